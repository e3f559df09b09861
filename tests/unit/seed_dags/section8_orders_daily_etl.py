# Seed 003 (SECTION 8), "8.2 Basic DAG". Uses PostgresOperator and e-mail: not built yet.
from kascade.sdk import DAG
from kascade.sdk import PythonOperator
from kascade.sdk import BashOperator
from kascade.sdk import PostgresOperator
from kascade.sdk import days_ago
from datetime import datetime, timedelta

default_args = {
    "owner": "data-team",
    "depends_on_past": False,
    "email": ["alerts@company.com"],
    "email_on_failure": True,
    "email_on_retry": False,
    "retries": 2,
    "retry_delay": timedelta(minutes=5),
}

with DAG(
    dag_id="orders_daily_etl",
    default_args=default_args,
    description="Daily orders ETL pipeline",
    schedule_interval="0 6 * * *",   # cron: 6am daily
    start_date=datetime(2024, 1, 1),
    catchup=False,                    # don't backfill
    tags=["etl", "orders", "daily"],
    max_active_runs=1,                # one run at a time
) as dag:

    def extract(**context):
        """Extract orders from source DB."""
        execution_date = context["ds"]   # "2024-01-15"
        # Extract logic here
        print(f"Extracting for date: {execution_date}")
        # Push result to XCom
        context["ti"].xcom_push(key="row_count", value=1000)
    
    def transform(**context):
        row_count = context["ti"].xcom_pull(key="row_count", task_ids="extract")
        print(f"Transforming {row_count} rows")
    
    def load(**context):
        print("Loading data")
    
    def validate(**context):
        print("Validating loaded data")
    
    t_extract = PythonOperator(task_id="extract", python_callable=extract)
    
    t_transform = PythonOperator(task_id="transform", python_callable=transform)
    
    t_load = PythonOperator(task_id="load", python_callable=load)
    
    t_validate = PythonOperator(task_id="validate", python_callable=validate)
    
    t_dbt_run = BashOperator(
        task_id="dbt_run",
        bash_command="cd /opt/dbt && dbt run --select tag:orders --target prod"
    )

    # Define task dependencies
    t_extract >> t_transform >> t_load >> t_validate >> t_dbt_run
