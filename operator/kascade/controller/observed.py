"""What a restarted operator finds of a run: TaskRuns, pods and the run's summary, read
into one ``engine.restore.Observed`` per task instance.

A pure function of the objects listed from the API, so every "crashed just before /
just after a write" case can be tested on recorded object sets (issue 14 builds on this
seam).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kascade.api.runs import TaskState, instance_key
from kascade.controller.podspec import ANN_ATTEMPT, ANN_KEY
from kascade.controller.status import parse_iso
from kascade.engine.instances import TERMINAL
from kascade.engine.restore import Observed


@dataclass
class Observation:
    instances: dict[str, Observed] = field(default_factory=dict)
    taskruns: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Instance key -> its TaskRun's metadata (name, uid)."""
    pods: dict[str, str] = field(default_factory=dict)
    """Instance key -> the pod of its current attempt, when that pod exists."""


def observe(
    taskruns: list[dict[str, Any]], pods: list[dict[str, Any]], run_status: dict[str, Any]
) -> Observation:
    found = Observation()
    live: dict[str, tuple[int, str]] = {}  # key -> (newest attempt with a pod, its name)
    for pod in pods:
        ann = pod["metadata"].get("annotations") or {}
        key, attempt = ann.get(ANN_KEY), int(ann.get(ANN_ATTEMPT, "0"))
        if key and attempt >= live.get(key, (0, ""))[0]:
            live[key] = (attempt, pod["metadata"]["name"])
    for key, state in (run_status.get("tasks") or {}).items():
        found.instances[key] = Observed(state=TaskState(state))
    for tr in taskruns:
        key = instance_key(tr["spec"]["taskName"], tr["spec"].get("mapIndex"))
        found.taskruns[key] = tr["metadata"]
        st = tr.get("status") or {}
        attempts = st.get("attempts") or []
        attempt = max([a.get("number", 0) for a in attempts] + [live.get(key, (0, ""))[0]])
        state = TaskState(st.get("state", "none"))
        launched = key in live and live[key][0] == attempt
        if launched:
            found.pods[key] = live[key][1]
            if state not in (TaskState.QUEUED, TaskState.RUNNING) and state not in TERMINAL:
                state = TaskState.QUEUED
        found.instances[key] = Observed(
            state=state,
            attempt=attempt,
            outputs=st.get("outputs") or {},
            message=st.get("message"),
            next_try_at=parse_iso(st.get("nextRetryTime")),
            ready_at=parse_iso(st.get("readyTime")),
            first_poke_at=parse_iso(st.get("firstPokeTime")),
            pokes=st.get("pokes") or 0,
            launched=launched,
            item=tr["spec"].get("item"),
        )
    return found
