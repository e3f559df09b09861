# Seed 000 (INTERMEDIATE track), "Advanced: Generate from Database".
# dags/db_dynamic_dags.py
from kascade.sdk import DAG
from kascade.sdk import PythonOperator
from datetime import datetime
import sqlite3 as psycopg2  # data source: an SQLite file stands in for Postgres
from pathlib import Path

def get_customers_from_db():
    """Fetch customer list from database"""
    conn = psycopg2.connect(Path(__file__).parent / "metadata.db")
    cur = conn.cursor()
    cur.execute("SELECT customer_id, table_name, schedule FROM customers WHERE active = true")
    customers = cur.fetchall()
    conn.close()
    return customers

# Generate DAGs
for customer_id, table_name, schedule in get_customers_from_db():
    dag_id = f"process_customer_{customer_id}"
    
    with DAG(
        dag_id=dag_id,
        schedule_interval=schedule,
        start_date=datetime(2023, 10, 1),
        catchup=False,
    ) as dag:
        
        task = PythonOperator(
            task_id=f"process_{customer_id}",
            python_callable=lambda: print(f"Processing {table_name}"),
        )
        
        globals()[dag_id] = dag
