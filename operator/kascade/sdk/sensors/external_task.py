"""``ExternalTaskSensor``: wait for a task (or the whole run) of another DAG's run.

The engine looks the other Pipeline's run up itself (no pod): the run whose
logical date is this run's minus ``execution_delta``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from kascade.sdk.exceptions import UnsupportedFeature
from kascade.sdk.sensors.base import BaseSensorOperator
from kascade.sdk.timing import duration

if TYPE_CHECKING:
    from kascade.sdk.lowering import Lowerer


class ExternalTaskSensor(BaseSensorOperator):
    template_fields: ClassVar[Sequence[str]] = ("external_dag_id", "external_task_id")
    ui_color = "#4db7db"

    def __init__(
        self,
        *,
        external_dag_id: str,
        external_task_id: str | None = None,
        external_task_ids: list[str] | None = None,
        external_task_group_id: str | None = None,
        allowed_states: list[str] | None = None,
        skipped_states: list[str] | None = None,
        failed_states: list[str] | None = None,
        execution_delta: timedelta | None = None,
        execution_date_fn: Any = None,
        check_existence: bool = False,
        poll_interval: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        ids = list(external_task_ids or [])
        if external_task_id is not None:
            ids = [external_task_id, *[i for i in ids if i != external_task_id]]
        for name, value, instead in (
            ("execution_date_fn", execution_date_fn, "use execution_delta"),
            ("external_task_group_id", external_task_group_id, "wait for the group's last task"),
            ("skipped_states", skipped_states, "list the states in allowed_states"),
        ):
            if value:
                raise UnsupportedFeature(f"ExternalTaskSensor({name}=...)", instead)
        if len(ids) > 1:
            raise UnsupportedFeature(
                "ExternalTaskSensor with several external_task_ids",
                "use one sensor per task, or wait for the whole DAG run (no task id)",
            )
        self.external_dag_id = external_dag_id
        self.external_task_id = ids[0] if ids else None
        self.allowed_states = [str(getattr(s, "value", s)) for s in allowed_states or ["success"]]
        # Airflow's default: no failed states (wait until the timeout whatever happens).
        self.failed_states = [str(getattr(s, "value", s)) for s in failed_states or []]
        self.execution_delta = execution_delta
        if poll_interval is not None:
            self.poke_interval = poll_interval

    def poke(self, context: dict[str, Any]) -> bool:
        raise RuntimeError(
            "ExternalTaskSensor is checked by the engine; a subclass cannot poke it in Python"
        )

    def _lower_native(self, lo: Lowerer) -> dict[str, Any]:
        fields = self.sensor_fields(
            "externalTask",
            pipeline=lo.pipeline_name(self.external_dag_id),
            task=self.external_task_id,
            states=self.allowed_states,
            failedStates=self.failed_states,
            logicalDateOffset=duration(self.execution_delta, "execution_delta"),
        )
        return {"sensor": fields}


ExternalTaskSensor._native_poke = ExternalTaskSensor.poke
