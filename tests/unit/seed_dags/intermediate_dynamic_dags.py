# Seed 000 (INTERMEDIATE track), "Solution: Generate DAGs Programmatically".
# dags/dynamic_dags.py
from kascade.sdk import DAG
from kascade.sdk import PythonOperator
from datetime import datetime
import yaml
from pathlib import Path  # data source: the config next to this file, not /opt/airflow

# Load config
with open(Path(__file__).parent / 'config.yaml', 'r') as f:
    config = yaml.safe_load(f)

def process_customer(customer_name, table_name):
    """Generic processing function"""
    def _process(**context):
        print(f"Processing {customer_name} from table {table_name}")
        # ... actual logic
    return _process

# Generate DAG for each customer
for customer in config['customers']:
    dag_id = f"process_{customer['name']}"
    
    with DAG(
        dag_id=dag_id,
        schedule_interval=customer['schedule'],
        start_date=datetime(2023, 10, 1),
        catchup=False,
        tags=['dynamic', customer['name']],
    ) as dag:
        
        task = PythonOperator(
            task_id=f"process_{customer['name']}",
            python_callable=process_customer(customer['name'], customer['table']),
        )
        
        # Register DAG in Airflow globals
        globals()[dag_id] = dag
