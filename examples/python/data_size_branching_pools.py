"""Python twin of manifests/examples/data-size-branching-pools.yaml.

A branch on a value pulled from XCom, pools with pool_slots, priority_weight,
and a join with trigger_rule none_failed_min_one_success.
On a cluster, create the Pool "heavy" first (see the YAML example).
"""

from datetime import datetime

from kascade.sdk import DAG, BashOperator, BranchPythonOperator, Param, task


def choose_processing_path(**context):
    size_mb = context["ti"].xcom_pull(task_ids="check_size", key="size_mb")
    choice = "process_large" if size_mb >= 1000 else "process_small"
    print(f"{size_mb} MB -> {choice}")
    return choice


with DAG(
    dag_id="data_size_branching_pools",
    description="Measure the day's data, then process it on the small or the pooled large path.",
    schedule="@daily",
    start_date=datetime(2024, 1, 1),
    catchup=False,
    params={
        "size_mb": Param(
            2048, type="integer", minimum=0, description="Size of the day's data (a stand-in)."
        )
    },
    tags=["example", "branching", "pools"],
) as dag:

    @task(multiple_outputs=True)
    def check_size(params=None, ds=None):
        size = params["size_mb"]
        print(f"measured {size} MB for {ds}")
        return {"size_mb": size, "rows": size * 1000}

    size = check_size()
    choose_path = BranchPythonOperator(
        task_id="choose_path", python_callable=choose_processing_path
    )
    process_small = BashOperator(
        task_id="process_small",
        bash_command='echo "small: processing $ROWS rows in one go"',
        env={"ROWS": size["rows"]},  # outputs are data: env, never the command's code
        priority_weight=1,
    )
    process_large = BashOperator(
        task_id="process_large",
        bash_command='echo "large: processing $ROWS rows in partitions"',
        env={"ROWS": size["rows"]},
        pool="heavy",
        pool_slots=2,
        priority_weight=10,
    )
    compact_large = BashOperator(
        task_id="compact_large",
        bash_command='echo "large: compacting output files"',
        pool="heavy",
        priority_weight=5,
    )
    report = BashOperator(
        task_id="report",
        bash_command='echo "report for {{ ds }}: $SIZE_MB MB processed"',
        env={"SIZE_MB": size["size_mb"]},
        trigger_rule="none_failed_min_one_success",
    )

    size >> choose_path >> [process_small, process_large]
    process_large >> compact_large
    [process_small, compact_large] >> report
