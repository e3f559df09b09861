"""Python twin of manifests/examples/email-alerts.yaml: e-mail the Airflow way.

``default_args`` ``email``/``email_on_retry`` alert on-call when a task fails for good,
``EmailOperator`` sends the report (no pod: the operator, or ``kascade run``, sends it
with the SMTP Secret ``kascade-smtp``; locally the ``KASCADE_SMTP_*`` variables), and
an ``SmtpNotifier`` as the DAG's callback mails the run's outcome to the leads.

KASCADE_SMTP_host=localhost KASCADE_SMTP_port=1025 KASCADE_SMTP_security=none \\
KASCADE_SMTP_from=kascade@example.com kascade run examples/python/email_alerts.py
"""

from datetime import datetime, timedelta

from kascade.sdk import DAG, BashOperator, EmailOperator, Param, SmtpNotifier

summary = SmtpNotifier(
    to="leads@example.com",
    subject="{{ dag.dag_id }} {{ ds }}: {{ ti.state }}",
    html_content="<p>Run {{ run_id }} ended <b>{{ ti.state }}</b>.</p><p>{{ exception or '' }}</p>",
)

with DAG(
    dag_id="email_alerts",
    description="A daily orders report sent by e-mail; failures alert on-call.",
    schedule="@daily",
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["example", "email"],
    params={"recipient": Param("data-team@example.com", type="string")},
    default_args={
        "email": ["oncall@example.com"],
        "email_on_retry": False,
        "retries": 1,
        "retry_delay": timedelta(seconds=1),
    },
    on_success_callback=summary,
    on_failure_callback=summary,
) as dag:
    count_orders = BashOperator(
        task_id="count_orders",
        bash_command='echo "orders=128" >> "$KASCADE_OUTPUTS"; echo "revenue=5120.5" >> "$KASCADE_OUTPUTS"',
        do_xcom_push=False,  # the command writes its outputs itself
    )
    send_report = EmailOperator(
        task_id="send_report",
        to="{{ params.recipient }}",
        cc=["leads@example.com"],
        subject="Orders for {{ ds }}: {{ ti.xcom_pull(task_ids='count_orders', key='orders') }}",
        html_content=(
            "<h2>Orders, {{ ds }}</h2><p>"
            "{{ ti.xcom_pull(task_ids='count_orders', key='orders') }} orders, revenue "
            "{{ ti.xcom_pull(task_ids='count_orders', key='revenue') }}.</p>"
        ),
    )
    count_orders >> send_report
