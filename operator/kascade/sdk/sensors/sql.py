"""``SqlSensor``: run a query until its first cell is truthy (Airflow's common-sql provider).

It becomes a ``sql`` sensor: the engine pokes PostgreSQL itself (in-process locally, a
pod of the operator's image running ``kascade poke sql`` on the cluster), read-only, with
the settings of the DAG connection ``conn_id`` (``DAG(connections={conn_id: secret})``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from kascade.sdk.exceptions import UnsupportedFeature
from kascade.sdk.sensors.base import BaseSensorOperator

if TYPE_CHECKING:
    from kascade.sdk.lowering import Lowerer


class SqlSensor(BaseSensorOperator):
    template_fields: ClassVar[Sequence[str]] = ("sql", "parameters")
    ui_color = "#7c7287"

    def __init__(
        self,
        *,
        conn_id: str,
        sql: str,
        parameters: Sequence[Any] | None = None,
        success: Any = None,
        failure: Any = None,
        selector: Any = None,
        fail_on_empty: bool = False,
        hook_params: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        for name, value in (
            ("success", success),
            ("failure", failure),
            ("selector", selector),
            ("fail_on_empty", fail_on_empty),
            ("hook_params", hook_params),
        ):
            if value:
                raise UnsupportedFeature(
                    f"SqlSensor({name}=...)",
                    "the condition is the first cell of the first row (Airflow's default); "
                    "write it into the query (SELECT count(*) > 0 ...), or poke from a "
                    "@task.sensor with your driver",
                )
        if not isinstance(sql, str):
            raise UnsupportedFeature("SqlSensor(sql=<a list>)", "give one query as a string")
        if isinstance(parameters, dict):
            raise UnsupportedFeature(
                "SqlSensor(parameters={...})", "give a list, bound to %s placeholders in order"
            )
        self.conn_id = conn_id
        self.sql = sql
        self.parameters = list(parameters or [])

    def poke(self, context: dict[str, Any]) -> bool:
        raise NotImplementedError(
            "SqlSensor is poked by Kascade itself; override poke() to run yours"
        )

    def _lower_native(self, lo: Lowerer) -> dict[str, Any]:
        fields = self.sensor_fields(
            "sql",
            connection=self.conn_id,
            sql=lo.template(self.sql, "sql"),
            parameters=[lo.template(str(p), "parameters") for p in self.parameters] or None,
        )
        return {"sensor": fields}


SqlSensor._native_poke = SqlSensor.poke
