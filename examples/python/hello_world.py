"""Python twin of manifests/examples/hello-world.yaml: two BashOperators chained with >>.

kascade run examples/python/hello_world.py
"""

from datetime import datetime

from kascade.sdk import DAG, BashOperator

with DAG(
    dag_id="hello_world",
    description="My first Kascade pipeline - say hello, then print the date.",
    schedule="@daily",
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["example"],
) as dag:
    say_hello = BashOperator(task_id="say_hello", bash_command='echo "Hello from Kascade"')
    print_date = BashOperator(task_id="print_date", bash_command="date")

    say_hello >> print_date
