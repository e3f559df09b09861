"""Python twin of manifests/examples/customer-pipelines/: one DAG per customer of a config file.

The seed's dynamic-DAG pattern, unchanged but for the imports: a loop over the
config, a closure per customer (``process_customer``), ``globals()[dag_id] = dag``.
The config is read when the file is parsed, here and in every task's pod, so it
lives in the DAG folder (JSON: the plain python image has no YAML parser).
"""

import json
from datetime import datetime, timedelta
from pathlib import Path

from kascade.sdk import DAG, PythonOperator

with open(Path(__file__).parent / "customers.json") as f:
    config = json.load(f)


def process_customer(customer_name, table_name):
    """Generic processing function (a closure per customer)."""

    def _process(**context):
        rows = context["ti"].xcom_pull(task_ids="extract")
        print(f"Processing {customer_name} from table {table_name}: {rows} rows")

    return _process


def extract_customer(table_name):
    def _extract(ds):
        print(f"extract {table_name} on {ds}")
        return 100

    return _extract


for customer in config["customers"]:
    dag_id = f"process_{customer['name']}"

    with DAG(
        dag_id=dag_id,
        description=f"Process customer {customer['name']} from table {customer['table']}.",
        schedule=customer["schedule"],
        start_date=datetime(2023, 10, 1),
        catchup=False,
        default_args={"retries": customer.get("retries", 1), "retry_delay": timedelta(seconds=1)},
        tags=["dynamic", customer["name"]],
    ) as dag:
        extract = PythonOperator(
            task_id="extract", python_callable=extract_customer(customer["table"])
        )
        process = PythonOperator(
            task_id="process",
            python_callable=process_customer(customer["name"], customer["table"]),
        )
        extract >> process

        # Register DAG in the module's globals, as the seed does.
        globals()[dag_id] = dag
