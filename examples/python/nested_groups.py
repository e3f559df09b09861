"""Python twin of manifests/examples/nested-groups.yaml.

A task group factory (``create_etl_task_group``) instantiated three times, a
custom operator (``QualityCheckOperator``: its ``execute`` runs in the task's
pod), and nested TaskGroups.
"""

from datetime import datetime, timedelta

from kascade.sdk import DAG, BaseOperator, BashOperator, TaskGroup


class QualityCheckOperator(BaseOperator):
    """A custom operator: Airflow's BaseOperator subclass with execute()."""

    template_fields = ("table",)

    def __init__(self, *, check, table="staging.events", **kwargs):
        super().__init__(retries=1, retry_delay=timedelta(seconds=1), **kwargs)
        self.check = check
        self.table = table

    def execute(self, context):
        print(f"check {self.check} on {self.table} for {context['ds']}: ok")


def create_etl_task_group(group_id, entity, source="postgres"):
    """A task group factory: extract -> quality_check -> transform -> load for one entity."""
    with TaskGroup(group_id=group_id) as group:
        extract = BashOperator(
            task_id="extract",
            bash_command=f'echo "extract {entity} from {source} for {{{{ ds }}}}"',
        )
        quality = BashOperator(
            task_id="quality_check", bash_command=f'echo "check nulls on raw.{entity}: ok"'
        )
        transform = BashOperator(task_id="transform", bash_command=f'echo "transform {entity}"')
        load = BashOperator(
            task_id="load", bash_command=f'echo "load {entity} into warehouse.{entity}"'
        )
        extract >> quality >> transform >> load
    return group


with DAG(
    dag_id="nested_groups",
    description="Multi-entity ETL from a group factory, then nested quality and transform groups.",
    schedule="@daily",
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["example", "task-groups", "templates"],
) as dag:
    start = BashOperator(task_id="start", bash_command='echo "Start"')
    end = BashOperator(task_id="end", bash_command='echo "End"')

    customers_etl = create_etl_task_group("customers_etl", "customers")
    products_etl = create_etl_task_group("products_etl", "products", source="sftp")
    orders_etl = create_etl_task_group("orders_etl", "orders", source="api")

    with TaskGroup("processing") as processing:
        with TaskGroup("data_quality") as dq:
            check_nulls = QualityCheckOperator(task_id="check_nulls", check="nulls")
            check_duplicates = QualityCheckOperator(
                task_id="check_duplicates", check="duplicates", table="warehouse.orders"
            )
            check_nulls >> check_duplicates
        with TaskGroup("transformations") as tf:
            BashOperator(task_id="transform_a", bash_command='echo "transform a"')
            BashOperator(task_id="transform_b", bash_command='echo "transform b"')
        dq >> tf

    start >> [customers_etl, products_etl] >> orders_etl >> processing >> end
