# Seed 001 (BEGINNER track), "Hello World Example". Uses e-mail on failure (alerts@... on a final failure).
from kascade.sdk import DAG
from kascade.sdk import BashOperator
from datetime import datetime, timedelta

# Default arguments (applied to all tasks)
default_args = {
    'owner': 'airflow',
    'depends_on_past': False,
    'email': ['alerts@company.com'],
    'email_on_failure': True,
    'email_on_retry': False,
    'retries': 3,
    'retry_delay': timedelta(minutes=5),
}

# Define DAG
with DAG(
    dag_id='hello_world',
    default_args=default_args,
    description='My first Airflow DAG',
    schedule_interval='@daily',  # Run every day at midnight
    start_date=datetime(2023, 10, 1),
    catchup=False,  # Don't backfill past dates
    tags=['example'],
) as dag:

    # Task 1: Print hello
    task_hello = BashOperator(
        task_id='say_hello',
        bash_command='echo "Hello from Airflow!"',
    )

    # Task 2: Print date
    task_date = BashOperator(
        task_id='print_date',
        bash_command='date',
    )

    # Task 3: Sleep
    task_sleep = BashOperator(
        task_id='sleep_5_seconds',
        bash_command='sleep 5',
    )

    # Define dependencies
    task_hello >> task_date >> task_sleep
