"""``TriggerDagRunOperator``: the task starts a run of another DAG (a ``triggerPipeline``
task; no pod runs), and may wait for it.

``trigger_dag_id`` is the other DAG's id (its Pipeline name is derived the same way as
for every DAG; a templated id is rendered when the task runs); ``conf`` becomes the
run's params (a string that is one whole ``{{ ... }}`` keeps its value's type);
``trigger_run_id``, ``logical_date`` (or Airflow 2's ``execution_date``),
``reset_dag_run``, ``wait_for_completion``, ``poke_interval``, ``allowed_states`` and
``failed_states`` mean what they mean in Airflow. ``deferrable`` is accepted: a waiting
trigger task never holds a worker here (the operator looks at the run every
``poke_interval``). Locally the other DAG runs in the same process, found in the same
file or folder.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from kascade.sdk.baseoperator import BaseOperator
from kascade.sdk.exceptions import UnsupportedFeature
from kascade.sdk.timing import duration
from kascade.sdk.xcom_arg import ResolveMixin

if TYPE_CHECKING:
    from kascade.sdk.lowering import Lowerer

_PHASES = ("queued", "running", "success", "failed")


def _states(values: Any, what: str) -> list[str] | None:
    if values is None:
        return None
    out = []
    for value in values:
        text = str(getattr(value, "value", value))
        if text not in _PHASES:
            raise ValueError(f"{what}: {text!r} is not a DAG run state ({', '.join(_PHASES)})")
        out.append(text)
    return out


class TriggerDagRunOperator(BaseOperator):
    template_fields: ClassVar[Sequence[str]] = (
        "trigger_dag_id",
        "trigger_run_id",
        "conf",
        "logical_date",
    )
    ui_color = "#ffefeb"

    def __init__(
        self,
        *,
        trigger_dag_id: str,
        trigger_run_id: str | None = None,
        conf: dict[str, Any] | None = None,
        logical_date: str | datetime | None = None,
        execution_date: str | datetime | None = None,
        reset_dag_run: bool = False,
        wait_for_completion: bool = False,
        poke_interval: float | timedelta = 60,
        allowed_states: list[Any] | None = None,
        failed_states: list[Any] | None = None,
        skip_when_already_exists: bool = False,
        deferrable: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if skip_when_already_exists:
            raise UnsupportedFeature(
                "skip_when_already_exists=True",
                "a task cannot skip itself yet; set reset_dag_run=True to replace the run",
            )
        if logical_date is not None and execution_date is not None:
            raise ValueError("give logical_date or execution_date, not both")
        self.trigger_dag_id = trigger_dag_id
        self.trigger_run_id = trigger_run_id
        self.conf = conf
        self.logical_date = logical_date if logical_date is not None else execution_date
        self.reset_dag_run = reset_dag_run
        self.wait_for_completion = wait_for_completion
        self.poke_interval = poke_interval
        self.allowed_states = _states(allowed_states, "allowed_states")
        self.failed_states = _states(failed_states, "failed_states")
        self.deferrable = deferrable

    def execute(self, context: dict[str, Any]) -> None:
        raise NotImplementedError("the operator (or kascade run) starts the run, not a pod")

    def runs_in_runtime(self) -> bool:
        return False

    def _lower(self, lo: Lowerer) -> dict[str, Any]:
        dag_id = self.trigger_dag_id
        pipeline = (
            lo.template(dag_id, "trigger_dag_id") if "{{" in dag_id else lo.pipeline_name(dag_id)
        )
        spec: dict[str, Any] = {"pipeline": pipeline}
        if self.trigger_run_id is not None:
            spec["runId"] = lo.template(self.trigger_run_id, "trigger_run_id")
        date = self.logical_date
        if isinstance(date, datetime):
            spec["logicalDate"] = date.isoformat()
        elif date is not None:
            spec["logicalDate"] = lo.template(date, "logical_date")
        if self.conf:
            spec["params"] = _templated(self.conf, lo)
        if self.reset_dag_run:
            spec["resetDagRun"] = True
        if self.wait_for_completion:
            spec["waitForCompletion"] = True
            if self.poke_interval != 60:
                spec["pokeInterval"] = duration(self.poke_interval, "poke_interval")
            if self.allowed_states is not None:
                spec["allowedStates"] = self.allowed_states
            if self.failed_states is not None:
                spec["failedStates"] = self.failed_states
        return {"triggerPipeline": spec}


def _templated(value: Any, lo: Lowerer) -> Any:
    """``conf``: every string translated from Airflow's Jinja; other JSON values as they are."""
    if isinstance(value, str | ResolveMixin):  # an XComArg is a template of its output
        return lo.template(value, "conf")
    if isinstance(value, dict):
        return {str(k): _templated(v, lo) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_templated(v, lo) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    raise TypeError(f"conf values must be JSON (str, number, bool, list, dict), got {value!r}")
