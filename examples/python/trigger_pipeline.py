"""Python twin of manifests/examples/trigger-pipeline.yaml: TriggerDagRunOperator.

The first DAG triggers the second with ``conf`` from an upstream task's result and
waits for it; the second is never scheduled (``schedule=None``). Locally both run
here: ``kascade run examples/python/trigger_pipeline.py --dag trigger_pipeline``
finds ``trigger_pipeline_child`` in the same file.
"""

from datetime import datetime

from kascade.sdk import DAG, BashOperator, Param, TriggerDagRunOperator, task

with DAG(
    dag_id="trigger_pipeline",
    description="Lists partitions, triggers the processing DAG for them, waits, then publishes.",
    schedule="@daily",
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["example", "trigger"],
) as dag:

    @task
    def list_partitions():
        return 3

    process = TriggerDagRunOperator(
        task_id="process_partitions",
        trigger_dag_id="trigger_pipeline_child",
        logical_date="{{ ts }}",
        conf={"partitions": list_partitions(), "source": "orders"},
        wait_for_completion=True,
        poke_interval=2,
    )
    publish = BashOperator(
        task_id="publish",
        bash_command='echo published after "$RUN_ID"',
        env={"RUN_ID": "{{ ti.xcom_pull(task_ids='process_partitions', key='trigger_run_id') }}"},
    )
    process >> publish

with DAG(
    dag_id="trigger_pipeline_child",
    description="Processes the partitions it is given; never scheduled, only triggered.",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    tags=["example", "trigger"],
    params={"partitions": Param(1, type="integer", minimum=1), "source": "events"},
) as child:
    BashOperator(
        task_id="process",
        bash_command='echo processing {{ params.partitions }} partitions of "$SOURCE" for {{ ds }}',
        env={"SOURCE": "{{ params.source }}"},  # a string param: env, never the command's code
    )
