"""Python twin of manifests/examples/etl-task-groups.yaml: TaskGroups and group-to-group edges."""

from datetime import datetime, timedelta

from kascade.sdk import DAG, BashOperator, TaskGroup, task

with DAG(
    dag_id="etl_task_groups",
    description="ETL organised in task groups - three extracts, a transform chain, two loads.",
    schedule="@daily",
    start_date=datetime(2024, 1, 1),
    catchup=False,
    default_args={"retries": 1, "retry_delay": timedelta(seconds=1)},
    tags=["example", "task-groups"],
) as dag:
    start = BashOperator(task_id="start", bash_command='echo "Start"')

    with TaskGroup("extract") as extract:

        @task
        def extract_db():
            return 100

        @task
        def extract_api():
            return 20

        @task
        def extract_files():
            return 5

        db, api, files = extract_db(), extract_api(), extract_files()

    with TaskGroup("transform") as transform:

        @task
        def clean(db_rows, api_rows, file_rows):
            total = db_rows + api_rows + file_rows
            print(f"clean: {total} rows in, dropping 3 with null keys")
            return total - 3

        @task
        def validate(rows):
            assert rows > 0
            print("validate: schema ok")

        @task
        def aggregate(rows):
            print(f"aggregate: {rows} rows -> 7 daily totals")
            return 7

        cleaned = clean(db, api, files)
        validate(cleaned) >> aggregate(cleaned)

    with TaskGroup("load") as load:
        BashOperator(
            task_id="load_warehouse",
            bash_command='echo load "$ROWS" rows',
            env={"ROWS": "{{ ti.xcom_pull(task_ids='transform.aggregate') }}"},
        )
        BashOperator(task_id="load_cache", bash_command="echo load the cache")

    @task
    def audit(db_rows, cleaned_rows):
        print(f"audit: db rows={db_rows}, cleaned rows={cleaned_rows}")

    end = BashOperator(task_id="end", bash_command='echo "End"')

    start >> extract >> transform >> load >> end
    audit(db, cleaned) >> end
