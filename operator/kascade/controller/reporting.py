"""What a run's driver tells the outside about its tasks: an Event per state change (on the
TaskRun, or on the run while a task has none) and the attempt metrics.

A mixin of ``RunDriver`` (``driver.py``), apart from the decisions so that each stays
short; ``launching.py`` reports refused pods through it too.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from kascade import metrics
from kascade.api.runs import TaskState
from kascade.controller.status import task_event
from kascade.engine.decisions import Result
from kascade.engine.plan import Plan
from kascade.engine.run import RunEngine


class Reporting:
    namespace: str
    run: dict[str, Any]
    plan: Plan
    engine: RunEngine
    emit: Callable[[dict[str, Any], str, str, str], None]
    taskruns: dict[str, dict[str, Any]]

    def _count_end(self, key: str, result: Result, now: datetime) -> None:
        inst = self.engine.instances.get(key)
        task_id = self.plan.tasks[inst.task].id if inst else key
        metrics.attempt_ended(self.namespace, self.plan.name, task_id, result.ok, result.reason)
        started = inst.attempt_started_at if inst else None
        if started:  # the attempt's own duration, as Airflow's task duration
            metrics.TASK_DURATION.labels(self.namespace, self.plan.name, task_id).observe(
                (now - started).total_seconds()
            )

    def _event(self, key: str, state: TaskState) -> None:
        """Every state change is an Event: on the TaskRun, or on the run if it has none."""
        inst = self.engine.instances.get(key)
        event = task_event(key, state, inst.message if inst else None)
        if event is None:
            return
        self._emit_on(key, *event)

    def _emit_on(self, key: str, kind: str, reason: str, message: str) -> None:
        meta = self.taskruns.get(key)
        if meta is not None:
            target = {
                "apiVersion": "kascade.io/v1alpha1",
                "kind": "TaskRun",
                "metadata": {"name": meta["name"], "namespace": self.namespace, "uid": meta["uid"]},
            }
            self.emit(target, kind, reason, message)
        else:
            self.emit(self.run, kind, reason, message)
