"""Golden DAG: TaskFlow values, a group, a branch, mapping, bash XCom, callbacks, sensors."""

from datetime import datetime, timedelta

from kascade.sdk import (
    DAG,
    BashOperator,
    DateTimeSensor,
    EmptyOperator,
    ExternalTaskSensor,
    FileSensor,
    HttpSensor,
    Param,
    TaskGroup,
    task,
)


def on_failure(context):
    print("failed:", context["ti"].task_id)


with DAG(
    dag_id="golden_taskflow",
    description="Every kind of task the SDK compiles.",
    schedule=timedelta(hours=6),
    start_date=datetime(2024, 1, 1),
    catchup=True,
    max_active_runs=2,
    dagrun_timeout=timedelta(hours=2),
    params={"limit": Param(10, type="integer", minimum=1), "mode": "fast"},
    default_args={
        "retries": 2,
        "retry_delay": timedelta(seconds=30),
        "on_failure_callback": on_failure,
        "owner": "golden",
    },
    tags=["golden"],
) as dag:

    @task(multiple_outputs=True)
    def extract(ds=None):
        return {"rows": [1, 2, 3], "day": ds}

    data = extract()

    @task.branch
    def choose(rows, params=None):
        return "work.heavy" if len(rows) > params["limit"] else "work.light"

    with TaskGroup("work", tooltip="The work") as work:
        heavy = BashOperator(
            task_id="heavy",
            bash_command="echo heavy {{ ds }} {{ macros.ds_add(ds, 1) }}",
            pool="big",
            pool_slots=2,
            priority_weight=5,
            execution_timeout=timedelta(minutes=10),
        )
        light = EmptyOperator(task_id="light")

    choose(data["rows"]) >> [heavy, light]

    @task
    def square(x):
        return x * x

    squares = square.expand(x=data["rows"])
    wait_file = FileSensor(
        task_id="wait_file",
        filepath="/data/{{ ds }}.csv",
        mode="reschedule",
        poke_interval=30,
        timeout=600,
        soft_fail=True,
    )
    wait_http = HttpSensor(task_id="wait_http", endpoint="http://svc:8080/ready", poke_interval=5)
    wait_other = ExternalTaskSensor(
        task_id="wait_other",
        external_dag_id="other_dag",
        external_task_id="load",
        execution_delta=timedelta(days=1),
    )
    wait_time = DateTimeSensor(task_id="wait_time", target_time="{{ data_interval_end }}")

    @task.sensor(poke_interval=10, mode="reschedule")
    def ready(rows):
        return len(rows) > 0

    report = BashOperator(
        task_id="report",
        bash_command=f"echo {squares} day={{{{ ti.xcom_pull(task_ids='extract', key='day') }}}}",
        trigger_rule="none_failed_min_one_success",
        retries=0,
    )
    [
        heavy,
        light,
        squares,
        wait_file,
        wait_http,
        wait_other,
        wait_time,
        ready(data["rows"]),
    ] >> report
