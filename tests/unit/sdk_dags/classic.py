"""Golden DAGs: the seeds' classic style (dag=dag, default_args) and a config loop."""

from datetime import datetime, timedelta

from kascade.sdk import (
    DAG,
    BashOperator,
    BranchPythonOperator,
    DummyOperator,
    KubernetesPodOperator,
    PythonOperator,
)

default_args = {
    "owner": "data-engineering",
    "depends_on_past": False,
    "retries": 3,
    "retry_delay": timedelta(minutes=5),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=30),
}

dag = DAG(
    "customer_etl_pipeline",
    default_args=default_args,
    description="ETL pipeline for customer data",
    schedule_interval="0 2 * * *",
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
)


def extract_data(**context):
    return {"row_count": 1000}


def check(**context):
    return "process" if context["ti"].xcom_pull(task_ids="extract")["row_count"] else "alert"


start = DummyOperator(task_id="start", dag=dag)
extract = PythonOperator(task_id="extract", python_callable=extract_data, dag=dag)
quality = BranchPythonOperator(task_id="quality_check", python_callable=check, dag=dag)
process = KubernetesPodOperator(
    task_id="process",
    image="busybox:1.36",
    cmds=["sh", "-c"],
    arguments=["echo processing {{ ds }}"],
    env_vars={"MODE": "full"},
    container_resources={"limits": {"memory": "64Mi"}},
    dag=dag,
)
alert = BashOperator(task_id="alert", bash_command="echo no rows", do_xcom_push=False, dag=dag)
start >> extract >> quality >> [process, alert]

for region in ("us", "eu"):
    with DAG(f"region_{region}", schedule="@hourly", start_date=datetime(2024, 1, 1)) as region_dag:
        BashOperator(task_id=f"load_{region}", bash_command=f"echo {region}", cwd="/tmp")
        globals()[region_dag.dag_id] = region_dag
