# Seed 000 (INTERMEDIATE track), "FileSensor".
from kascade.sdk import FileSensor
from kascade.sdk import PythonOperator
from kascade.sdk import DAG
from datetime import datetime
from pathlib import Path  # data source: data/input.csv next to this file, not /data

def process_file(**context):
    print("File found! Processing...")
    # ... process /data/input.csv

with DAG('wait_for_file', start_date=datetime(2023, 10, 1)) as dag:
    
    # Wait for file to appear
    wait_for_file = FileSensor(
        task_id='wait_for_input_file',
        filepath=str(Path(__file__).parent / 'data' / 'input.csv'),
        fs_conn_id='fs_default',  # File system connection
        poke_interval=30,  # Check every 30 seconds
        timeout=600,  # Fail after 10 minutes
        mode='poke',  # 'poke' (blocking) or 'reschedule' (non-blocking)
    )
    
    process = PythonOperator(
        task_id='process_file',
        python_callable=process_file,
    )
    
    wait_for_file >> process
