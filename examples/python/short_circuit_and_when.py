"""Python twin of manifests/examples/short-circuit-and-when.yaml.

ShortCircuit tasks (``@task.short_circuit``) and Kascade's ``when=`` (an
expression on params and upstream outputs, checked by the engine before the
task runs; Airflow's closest is ``@task.run_if``, which needs a worker).
"""

from datetime import datetime

from kascade.sdk import DAG, BashOperator, Param, task

with DAG(
    dag_id="short_circuit_and_when",
    description="Skip work when there is nothing to do - short circuits and conditional tasks.",
    schedule="@daily",
    start_date=datetime(2024, 1, 1),
    catchup=False,
    params={
        "env": Param("dev", type="string", enum=["dev", "staging", "prod"]),
        "full_refresh": Param(False, type="boolean"),
        "min_rows": Param(10, type="integer", minimum=0),
    },
    tags=["example", "short-circuit", "params"],
) as dag:

    @task(multiple_outputs=True)
    def extract(ds=None):
        print(f"found 42 new rows for {ds}")
        return {"rows": 42}

    @task.short_circuit
    def has_new_data(rows):
        return rows > 0

    @task.short_circuit
    def publish_gate(params=None):
        if params["env"] != "prod":
            print("not prod: nothing to publish")
        return params["env"] == "prod"

    rows = extract()["rows"]
    gate = has_new_data(rows)
    on_time_report = BashOperator(
        task_id="on_time_report",
        bash_command='echo "all files arrived on time"',
        when="tasks.extract.outputs.late_files | default(0) == 0",
    )
    transform = BashOperator(
        task_id="transform",
        bash_command='echo transform "$ROWS" rows for {{ params.env }}',
        env={"ROWS": rows},  # an upstream output: env, never the command's code
        when="tasks.extract.outputs.rows >= params.min_rows",
    )
    full_refresh = BashOperator(
        task_id="full_refresh",
        bash_command='echo "rebuilding every table"',
        when="params.full_refresh",
    )
    notify_prod = BashOperator(
        task_id="notify_prod",
        bash_command='echo "paging the prod on-call channel"',
        when="params.env == 'prod'",
    )
    notify_team = BashOperator(
        task_id="notify_team",
        bash_command='echo "posting to the {{ params.env }} channel"',
        when="params.env in ['dev', 'staging'] and not params.full_refresh",
    )
    finish = BashOperator(
        task_id="finish", bash_command='echo "notified"', trigger_rule="none_failed_min_one_success"
    )
    publish = BashOperator(task_id="publish", bash_command='echo "publishing to analytics"')
    publish_audit = BashOperator(
        task_id="publish_audit", bash_command='echo "audit the publish"', trigger_rule="all_done"
    )

    rows >> on_time_report
    gate >> [transform, full_refresh]
    transform >> [notify_prod, notify_team] >> finish
    transform >> publish_gate() >> publish >> publish_audit
