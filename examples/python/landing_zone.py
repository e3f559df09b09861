"""Python twin of manifests/examples/landing-zone.yaml.

``SqlSensor`` and ``S3KeySensor`` with their connections (``DAG(connections=...)`` names the
Secrets), and a ``@task`` whose return value is larger than the 4 KiB a termination
message holds: with an object store configured (``KASCADE_STORE_<key>`` for a local run,
the chart's ``objectStore`` on a cluster) it goes to the store and the downstream task
reads it back.
"""

from datetime import datetime

from kascade.sdk import DAG, BashOperator, S3KeySensor, SqlSensor, task

with DAG(
    dag_id="landing_zone",
    description="Wait for the day's orders in the warehouse and their export in the lake, "
    "then summarise.",
    schedule="@daily",
    start_date=datetime(2024, 1, 1),
    catchup=False,
    connections={"warehouse": "warehouse-db", "lake": "lake-s3"},
    tags=["example", "sensors", "object-store"],
) as dag:
    orders_loaded = SqlSensor(
        task_id="orders_loaded",
        conn_id="warehouse",
        sql="SELECT count(*) FROM landed_orders WHERE day = %s",
        parameters=["{{ ds }}"],
        mode="reschedule",
        poke_interval=5,
        timeout=600,
    )
    export_landed = S3KeySensor(
        task_id="export_landed",
        aws_conn_id="lake",
        bucket_key="s3://landing/exports/{{ ds }}/*.csv",
        wildcard_match=True,
        poke_interval=5,
        timeout=600,
    )

    @task(multiple_outputs=True)
    def summarise(ds=None):
        lines = [f"order {i:04d} of {ds}: shipped, paid, invoiced" for i in range(400)]
        return {"day": ds, "lines": lines}  # about 20 KB: five times the 4 KiB limit

    summary = summarise()
    report = BashOperator(
        task_id="report",
        bash_command='echo "$DAY: '
        "{{ ti.xcom_pull('summarise', key='lines') | length }} order lines\"",
        env={"DAY": "{{ ti.xcom_pull('summarise', key='day') }}"},  # data: env, never code
    )
    [orders_loaded, export_landed] >> summary >> report
