"""Python twin of manifests/examples/shared-templates-and-cache.yaml.

A TaskTemplate of the namespace used by name (``TaskTemplateOperator``; the manifest is
task_templates.yaml beside this file), its inputs templated like ``template_fields``,
task caching with ``cache_key``/``cache_expiration`` (Prefect's cache_key_fn), a mapped
task whose third instance reuses the first one's result, and ``days_ago(1)``, which
compiles to the relative ``startDate: -1d``.
"""

from datetime import timedelta

from kascade.sdk import DAG, BashOperator, TaskTemplateOperator, days_ago

with DAG(
    dag_id="shared_templates_and_cache",
    description="Fetch the day's exchange rates with a shared template, once per day and currency.",
    schedule="@daily",
    start_date=days_ago(1),
    catchup=False,
    params={"base": "EUR"},
    tags=["example", "templates", "caching"],
) as dag:
    base_rates = TaskTemplateOperator(
        task_id="base_rates",
        template="fetch-rates",
        inputs={"currency": "{{ params.base }}"},
        cache_key="rates-{{ params.base }}-{{ ds }}",
        cache_expiration=timedelta(days=1),
    )
    quote_rates = BashOperator.partial(
        task_id="quote_rates",
        max_active_tis_per_dag=1,
        cache_key="quote-{{ item }}-{{ ds }}",
    ).expand(
        bash_command=[f"echo quoting {c}; echo rate=1.{len(c)}" for c in ("USD", "GBP", "USD")]
    )
    report = BashOperator(
        task_id="report",
        bash_command='echo "base $BASE_RATE"',
        env={"BASE_RATE": "{{ ti.xcom_pull('base_rates', key='rate') }}"},  # data: env
    )
    base_rates >> quote_rates >> report
