"""Python twin of manifests/examples/weekday-branching.yaml: @task.branch on the logical date."""

from datetime import datetime

from kascade.sdk import DAG, BashOperator, task

with DAG(
    dag_id="weekday_branching",
    description="Weekday or weekend processing, chosen by a branch task from the logical date.",
    schedule="@daily",
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["example", "branching"],
) as dag:
    start = BashOperator(task_id="start", bash_command='echo "Start"')

    @task.branch
    def decide_branch(**context):
        day = context["logical_date"]
        choice = "weekend_task" if day.weekday() >= 5 else "weekday_task"  # Sat=5, Sun=6
        print(day.date(), "is a", day.strftime("%A"), "-> following", choice)
        return choice

    weekday_task = BashOperator(
        task_id="weekday_task", bash_command='echo "Running weekday processing for {{ ds }}"'
    )
    weekend_task = BashOperator(
        task_id="weekend_task", bash_command='echo "Running weekend processing for {{ ds }}"'
    )
    end = BashOperator(
        task_id="end", bash_command='echo "End"', trigger_rule="none_failed_min_one_success"
    )

    start >> decide_branch() >> [weekday_task, weekend_task] >> end
