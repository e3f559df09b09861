"""Python twin of manifests/examples/data-quality-fails.yaml (MEANT TO FAIL).

A quality check that raises fails the run: publish ends upstream_failed, an
alert with trigger_rule one_failed runs, and a cleanup with all_done runs.
"""

from datetime import datetime

from kascade.sdk import DAG, BashOperator, TriggerRule, task


def run_failed(context):
    print(f"[run callback] {context['reason']}")


with DAG(
    dag_id="data_quality_fails",
    description="Load, then a quality check that finds duplicate emails and fails.",
    schedule="@daily",
    start_date=datetime(2024, 1, 1),
    catchup=False,
    default_args={"retries": 0},  # a failed check is not transient: do not retry it
    on_failure_callback=run_failed,
    tags=["example", "data-quality", "expect-failure"],
) as dag:

    @task
    def load(ds=None):
        print(f"loaded 1000 users into staging.users for {ds}")
        return 1000

    @task
    def quality_check(rows):
        duplicates = 3  # SELECT count(*) FROM (SELECT email ... HAVING count(*) > 1)
        print(f"checked {rows} rows: {duplicates} duplicate emails")
        if duplicates > 0:
            raise ValueError(f"Data quality check failed: found {duplicates} duplicate emails")

    loaded = load()
    checked = quality_check(loaded)
    publish = BashOperator(task_id="publish", bash_command="echo publish to analytics.users")
    alert = BashOperator(
        task_id="alert",
        bash_command="echo ALERT: data quality check failed for {{ ds }}",
        trigger_rule=TriggerRule.ONE_FAILED,
    )
    cleanup = BashOperator(
        task_id="cleanup", bash_command="echo dropping staging tables", trigger_rule="all_done"
    )
    checked >> [publish, alert]
    [loaded, checked] >> cleanup
