"""Python twin of manifests/examples/daily-etl.yaml: TaskFlow values passed between tasks.

``extract`` returns several values (multiple_outputs), ``transform`` receives them
as arguments, and the BashOperators read ``transform``'s result through an env
var and an f-string (both become ``{{ tasks.transform.outputs.return_value }}``).
"""

from datetime import datetime, timedelta

from kascade.sdk import DAG, BashOperator, task


def alert_on_failure(context):
    """on_failure_callback: runs in a hook pod (or process) when a task fails for good."""
    ti = context["task_instance"]
    print(f"ALERT: {ti.dag_id}.{ti.task_id} failed: {context['exception']}")


default_args = {
    "owner": "data-team",
    "retries": 2,
    "retry_delay": timedelta(seconds=1),
    "on_failure_callback": alert_on_failure,
}

with DAG(
    dag_id="daily_etl",
    default_args=default_args,
    description="Daily users ETL - extract, keep adults, load; values flow between tasks.",
    schedule="0 3 * * *",
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["etl", "daily", "xcom"],
) as dag:

    @task(multiple_outputs=True)
    def extract(ds=None):
        # A real task would read /data/users.csv or an API; a small sample keeps it fast.
        records = [
            {"id": 1, "name": "alice", "age": 34},
            {"id": 2, "name": "bob", "age": 17},
            {"id": 3, "name": "carol", "age": 45},
            {"id": 4, "name": "dan", "age": 12},
            {"id": 5, "name": "erin", "age": 29},
            {"id": 6, "name": "frank", "age": 61},
        ]
        print("extracted", len(records), "records for", ds)
        return {
            "rows": len(records),
            "records": records,
            "file": f"s3://lake/raw/users/{ds.replace('-', '')}.json",
        }

    @task
    def transform(records, rows, file):
        assert len(records) == rows, (len(records), rows)
        adults = [r for r in records if r["age"] > 18]
        print("transformed", rows, "rows from", file, "->", len(adults), "adults")
        return len(adults)

    extracted = extract()
    adults = transform(extracted["records"], extracted["rows"], extracted["file"])

    load = BashOperator(
        task_id="load",
        bash_command='test "$ROWS" -eq 4 && echo "loaded $ROWS rows into users for $RUN_DATE"',
        env={"RUN_DATE": "{{ ds }}", "ROWS": adults},
    )
    send_summary = BashOperator(
        task_id="send_summary",
        bash_command='echo "ETL for {{ ds }} done: $ROWS rows loaded"',
        env={"ROWS": adults},  # a task's output is data: env, never the command's code
    )

    load >> send_summary
