"""The e2e DAG of the SDK: values between @tasks, a branch into a group, a mapped task.

Run on the cluster by tests/e2e/test_sdk_cluster.py and locally by the unit
tier (tests/unit/test_sdk_local_runs.py); both must end in the same states.
"""

from datetime import timedelta

from kascade.sdk import (
    DAG,
    BashOperator,
    EmptyOperator,
    KubernetesPodOperator,
    TaskGroup,
    Variable,
    task,
)

CALLBACK_MARK = "sdk-features callback ran for"


def report_success(context):
    print(CALLBACK_MARK, context["ti"].task_id)


with DAG(
    dag_id="sdk_features",
    schedule=None,
    default_args={"retries": 1, "retry_delay": timedelta(seconds=1)},
    params={"threshold": 5},
    variables=["sdk-e2e-vars"],
    tags=["e2e"],
) as dag:

    @task(multiple_outputs=True)
    def extract(ds=None):
        return {"orders": [3, 1, 4, 1, 5], "day": ds}

    @task
    def greeting():
        return Variable.get("greeting", default_var="hello")

    @task.branch
    def choose(orders, params=None):
        return "process.big" if len(orders) >= params["threshold"] else "process.small"

    orders = extract()["orders"]
    with TaskGroup("process") as process:

        @task
        def big(orders):
            return sum(orders)

        total = big(orders)
        small = EmptyOperator(task_id="small")

    choose(orders) >> [total, small]

    @task
    def double(x):
        return x * 2

    doubled = double.expand(x=orders)

    count = BashOperator(task_id="count", bash_command="echo counting; echo 5")

    container = KubernetesPodOperator(
        task_id="container",
        image="busybox:1.36",
        cmds=["sh", "-c"],
        arguments=['echo "{\\"seen\\": 5}" > "$KASCADE_OUTPUTS"'],
    )

    @task(trigger_rule="none_failed_min_one_success", on_success_callback=report_success)
    def summary(total, doubled, counted, seen, hello):
        assert doubled == [6, 2, 8, 2, 10], doubled
        assert counted == "5", counted
        assert seen == 5, seen
        return {"total": total, "doubled": sum(doubled), "greeting": hello}

    summary(total, doubled, count.output, container.output["seen"], greeting())
