"""Python twin of manifests/examples/retries-with-callbacks.yaml.

A flaky task retried with exponential backoff, with Python on_retry /
on_failure / on_success callbacks on the task and on the DAG run. Each callback
runs once per event in a small hook pod (a process locally) that loads this file.
"""

from datetime import datetime, timedelta

from kascade.sdk import DAG, BashOperator, PythonOperator


def call_flaky_api(ti):
    if ti.try_number == 1:
        raise ConnectionError("first attempt: simulated transient error (HTTP 503 from the API)")
    print("second attempt: API answered 200")
    ti.xcom_push(key="status", value=200)


def on_retry(context):
    print(f"[retry callback] {context['ti'].task_id}: {context['exception']}")


def on_failure(context):
    print(f"[failure callback] {context['ti'].task_id}: {context['exception']}")


def on_success(context):
    print(f"[success callback] {context['ti'].task_id}: {context['exception']}")


def run_finished(context):
    print(f"[run callback] {context['dag_run'].run_id}: {context['reason']}")


with DAG(
    dag_id="retries_with_callbacks",
    description="A flaky task retried with exponential backoff, with callbacks.",
    schedule="@hourly",
    start_date=datetime(2024, 1, 1),
    catchup=False,
    on_success_callback=run_finished,
    on_failure_callback=run_finished,
    tags=["example", "retries", "callbacks"],
) as dag:
    flaky = PythonOperator(
        task_id="call_flaky_api",
        python_callable=call_flaky_api,
        retries=2,
        retry_delay=timedelta(seconds=1),
        retry_exponential_backoff=True,  # 1s, then 2s, ... never more than max_retry_delay
        max_retry_delay=timedelta(seconds=2),
        on_retry_callback=on_retry,
        on_failure_callback=on_failure,
        on_success_callback=on_success,
    )
    report = BashOperator(
        task_id="report",
        bash_command='echo API status "$STATUS"',
        env={"STATUS": "{{ ti.xcom_pull(task_ids='call_flaky_api', key='status') }}"},
    )
    flaky >> report
