# Seed 004 (Orchestration skill), "Basic DAG Structure" + "Sequential Task Pattern".
# Uses e-mail on failure (alerts@... on a final failure).
from kascade.sdk import DAG
from kascade.sdk import PythonOperator
from kascade.sdk import days_ago
from datetime import timedelta

# Default arguments for all tasks
default_args = {
    'owner': 'data-engineering',
    'depends_on_past': False,
    'email': ['alerts@example.com'],
    'email_on_failure': True,
    'email_on_retry': False,
    'retries': 3,
    'retry_delay': timedelta(minutes=5),
    'retry_exponential_backoff': True,
    'max_retry_delay': timedelta(minutes=30)
}

# DAG definition
dag = DAG(
    'customer_etl_pipeline',
    default_args=default_args,
    description='ETL pipeline for customer data',
    schedule_interval='0 2 * * *',  # Daily at 2 AM UTC
    start_date=days_ago(1),
    catchup=False,  # Don't backfill historical runs
    tags=['etl', 'customer', 'daily'],
    max_active_runs=1  # Prevent concurrent runs
)

def extract_data(**context):
    """Extract data from source."""
    # Extract logic
    return {'row_count': 1000}

def transform_data(**context):
    """Transform extracted data."""
    # Get data from previous task
    ti = context['ti']
    extract_result = ti.xcom_pull(task_ids='extract')
    # Transform logic
    return {'transformed_rows': extract_result['row_count']}

def load_data(**context):
    """Load transformed data."""
    # Load logic
    pass

# Create tasks
extract = PythonOperator(
    task_id='extract',
    python_callable=extract_data,
    dag=dag
)

transform = PythonOperator(
    task_id='transform',
    python_callable=transform_data,
    dag=dag
)

load = PythonOperator(
    task_id='load',
    python_callable=load_data,
    dag=dag
)

# Define dependencies (sequential)
extract >> transform >> load
