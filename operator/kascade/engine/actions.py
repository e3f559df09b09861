"""Tasks that run no container: the driver does their work itself.

``sendEmail`` (Airflow's EmailOperator) and ``triggerPipeline`` (TriggerDagRunOperator)
are ordinary tasks to the engine (slots, pools, retries, timeouts, trigger rules),
but their attempt is an action of the driver instead of a process or a pod. What the
rules of those actions are lives here, once, for the local runner and the operator:

* **Trigger policy** (:class:`TriggerPolicy`): the defaults (poke every 60 s, success
  is ``[success]``, failure is ``[failed]``) and the verdict on the triggered run's
  phase (:meth:`TriggerPolicy.verdict`).
* **The request** (:func:`trigger_request`): which pipeline, which run id and logical
  date, which params, from the rendered fields; and the *identity* of the attempt that
  asks (``origin``), which the driver records on the run it creates so that a driver
  restarted mid-task finds the run it made and follows it, instead of making another.
* **The outputs** of a trigger task (Airflow's XCom keys ``trigger_run_id``,
  ``trigger_logical_date_iso``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from kascade.api import defaults
from kascade.api.messaging import TriggerPipeline
from kascade.api.pipeline import SensorKind, Task
from kascade.engine.durations import parse_duration
from kascade.engine.run_dates import read_date, run_id

PODLESS_SENSORS = frozenset({SensorKind.TIME, SensorKind.DATETIME, SensorKind.EXTERNAL_TASK})
"""Sensors the engine checks itself (the clock, other runs): no pod either."""
RUN_ID_OUTPUT = "trigger_run_id"
LOGICAL_DATE_OUTPUT = "trigger_logical_date_iso"


class Action(StrEnum):
    EMAIL = "sendEmail"
    TRIGGER = "triggerPipeline"


def action_of(task: Task) -> Action | None:
    """What the driver does instead of running a container, if anything."""
    if task.send_email is not None:
        return Action.EMAIL
    if task.trigger_pipeline is not None:
        return Action.TRIGGER
    return None


def runs_pod(task: Task) -> bool:
    """False for actions and for sensors the engine checks itself."""
    if action_of(task) is not None:
        return False
    return not (task.sensor is not None and task.sensor.kind in PODLESS_SENSORS)


@dataclass(frozen=True)
class TriggerPolicy:
    """A trigger task's waiting rules, defaults applied and durations parsed."""

    wait: bool
    interval: timedelta
    allowed: tuple[str, ...]
    failed: tuple[str, ...]
    reset: bool

    @classmethod
    def of(cls, trigger: TriggerPipeline) -> TriggerPolicy:
        """Raises ValueError (naming the value) on a poke interval that does not parse."""
        interval = (
            parse_duration(trigger.poke_interval)
            if trigger.poke_interval is not None
            else defaults.TRIGGER_POKE_INTERVAL
        )
        return cls(
            wait=trigger.wait_for_completion,
            interval=interval,
            allowed=tuple(trigger.allowed_states or defaults.TRIGGER_ALLOWED_STATES),
            failed=tuple(trigger.failed_states or defaults.TRIGGER_FAILED_STATES),
            reset=trigger.reset_dag_run,
        )

    def verdict(self, phase: str | None) -> bool | None:
        """The task's outcome once the triggered run is in ``phase``: True (success),
        False (failure) or None (not yet; look again after ``interval``). A run that
        is gone (``phase`` None after it was made) is the caller's failure to report."""
        if phase in self.allowed:
            return True
        if phase in self.failed:
            return False
        return None


@dataclass(frozen=True)
class TriggerRequest:
    """What to create, from a trigger task's rendered fields."""

    pipeline: str
    namespace: str
    run_id: str | None
    """The id asked for (None: the driver's default for a triggered run)."""
    logical_date: datetime | None
    """None: the moment the run is made."""
    params: dict[str, Any]
    origin: str
    """``<namespace>/<run>/<instance>/<attempt>`` of the asking attempt: recorded on the
    run it makes, so that the same attempt, launched again, adopts that run."""


def trigger_request(
    trigger: TriggerPipeline, *, namespace: str, parent_run: str, key: str, attempt: int
) -> TriggerRequest:
    """The request of one attempt; raises ValueError on a logical date that does not parse
    or a run id that is blank once rendered."""
    logical = None
    if trigger.logical_date is not None and trigger.logical_date.strip():
        try:
            logical = read_date(trigger.logical_date.strip())
        except ValueError:
            raise ValueError(
                f"logicalDate: {trigger.logical_date!r} is not an ISO date or date-time"
            ) from None
    wanted = trigger.run_id
    if wanted is not None and not wanted.strip():
        raise ValueError("runId: rendered to an empty string")
    if wanted is not None and any(c == "/" or not c.isprintable() for c in wanted):
        raise ValueError(f"runId: {wanted!r} may not hold '/' or control characters")
    return TriggerRequest(
        pipeline=trigger.pipeline.strip(),
        namespace=trigger.namespace or namespace,
        run_id=wanted.strip() if wanted is not None else None,
        logical_date=logical,
        params=dict(trigger.params or {}),
        origin=f"{namespace}/{parent_run}/{key}/{attempt}",
    )


def default_run_id(logical_date: datetime) -> str:
    """A triggered run's id when none is asked for (Airflow's ``manual__<date>``)."""
    return run_id("triggered", logical_date)


def trigger_outputs(run: str, logical_date: datetime) -> dict[str, Any]:
    """Airflow's XComs of TriggerDagRunOperator."""
    return {RUN_ID_OUTPUT: run, LOGICAL_DATE_OUTPUT: logical_date.isoformat()}
