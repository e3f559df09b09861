"""What a restarted operator finds of a run: TaskRuns, pods and the run's summary, read
into one ``engine.restore.Observed`` per task instance.

A pure function of the objects listed from the API, so that every "crashed just before
/ just after a write" case is a unit test on a recorded object set
(``tests/unit/test_restore_objects.py``, ``tests/unit/test_crash_points.py``).

* A TaskRun's status records the attempts that ended (oldest first), with the pod of
  each (attempt, poke); its ``kascade.io/attempt`` annotation the highest attempt the
  driver launched (written before that attempt's pod is created).
* A pod is recorded when its (attempt, poke) is at or below the newest record; the
  newer ones ended, or run, while nobody recorded them: they are replayed.
* The run's summary (``status.tasks``) counts only for instances without a TaskRun, and
  only when it says they finished (settled by a rule, or marked by a user); anything
  else is decided again by the trigger rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kascade.api.runs import AttemptReason, TaskState, instance_key
from kascade.controller import observe
from kascade.controller.podspec import ANN_ATTEMPT, ANN_KEY, ANN_POKE
from kascade.controller.status import parse_iso
from kascade.engine.instances import TERMINAL, Attempt
from kascade.engine.restore import Observed, PodSeen

ANN_LAUNCHED = ANN_ATTEMPT
"""On a TaskRun: the highest attempt whose pod the driver may have created."""


@dataclass
class Observation:
    instances: dict[str, Observed] = field(default_factory=dict)
    taskruns: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Instance key -> its TaskRun's metadata (name, uid, annotations)."""
    pods: dict[tuple[str, int, int], str] = field(default_factory=dict)
    """(instance key, attempt, poke) -> the name of that pod, for the pods that exist."""
    waiting: dict[tuple[str, int, int], str] = field(default_factory=dict)
    """(instance key, attempt, poke) -> why that pod is not running yet, if it says."""
    launched: dict[str, int] = field(default_factory=dict)
    """Instance key -> the attempt its TaskRun says was launched last."""
    started_at: datetime | None = None
    """When the run started (``started_at``)."""
    stored: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Instance key -> its TaskRun's status as stored (a write that changes nothing is
    not made again)."""


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _reason(value: Any) -> AttemptReason | None:
    try:
        return AttemptReason(value) if value else None
    except ValueError:
        return None


def _attempt(record: dict[str, Any]) -> Attempt:
    end = parse_iso(record.get("endTime"))
    assert end is not None
    return Attempt(
        number=_int(record.get("number")),
        start=parse_iso(record.get("startTime")),
        end=end,
        exit_code=record.get("exitCode"),
        reason=_reason(record.get("reason")),
        message=record.get("message"),
        poke=_int(record.get("poke")),
    )


def pod_seen(pod: dict[str, Any]) -> PodSeen:
    """A pod as the engine's restore reads it: which attempt and poke, when it was made and
    started, and how it ended if it did (a pod being deleted before it ended was deleted)."""
    meta = pod["metadata"]
    ann = meta.get("annotations") or {}
    seen = observe.view(pod, deleted=bool(meta.get("deletionTimestamp")))
    container = observe.task_container(pod)
    state = container.get("state") or {}
    running, terminated = state.get("running") or {}, state.get("terminated") or {}
    started = parse_iso(terminated.get("startedAt") or running.get("startedAt"))
    if seen.started and started is None:
        started = parse_iso((pod.get("status") or {}).get("startTime"))
    ended = None
    if seen.result is not None:
        ended = parse_iso(terminated.get("finishedAt") or meta.get("deletionTimestamp"))
    return PodSeen(
        attempt=_int(ann.get(ANN_ATTEMPT)),
        poke=_int(ann.get(ANN_POKE)),
        created_at=parse_iso(meta.get("creationTimestamp")),
        started_at=started if seen.started else None,
        result=seen.result,
        ended_at=ended,
    )


def observe_run(
    taskruns: list[dict[str, Any]], pods: list[dict[str, Any]], run_status: dict[str, Any]
) -> Observation:
    found = Observation()
    pods_of: dict[str, list[PodSeen]] = {}
    for pod in pods:
        key = (pod["metadata"].get("annotations") or {}).get(ANN_KEY)
        if key:
            seen = pod_seen(pod)
            pods_of.setdefault(key, []).append(seen)
            found.pods[(key, seen.attempt, seen.poke)] = pod["metadata"]["name"]
            view = observe.view(pod)
            if view.result is None and view.waiting_reason:
                why = f"{view.waiting_reason} {view.waiting_message or ''}".strip()
                found.waiting[(key, seen.attempt, seen.poke)] = why
    for key, state in (run_status.get("tasks") or {}).items():
        if state and TaskState(state) in TERMINAL:
            found.instances[key] = Observed(state=TaskState(state))
    for tr in taskruns:
        key = instance_key(tr["spec"]["taskName"], tr["spec"].get("mapIndex"))
        meta = tr["metadata"]
        found.taskruns[key] = meta
        st = tr.get("status") or {}
        found.stored[key] = st
        records = st.get("attempts") or []
        history = tuple(_attempt(r) for r in records if r.get("endTime"))
        open_records = [r for r in records if not r.get("endTime")]
        newest = max(((a.number, a.poke) for a in history), default=(0, 0))
        unrecorded = sorted(
            (p for p in pods_of.get(key, []) if (p.attempt, p.poke) > newest),
            key=lambda p: (p.attempt, p.poke),
        )
        launched = launched_of(meta)
        found.launched[key] = launched
        state = TaskState(st.get("state") or "none")
        attempt = max([_int(r.get("number")) for r in records] + [0])
        top = max([launched, attempt, *(p.attempt for p in unrecorded)])
        started = any(_int(r.get("number")) == top and r.get("startTime") for r in open_records)
        found.instances[key] = Observed(
            state=state,
            attempt=attempt,
            launched=launched,
            history=history,
            started=started or (state is TaskState.RUNNING and attempt == top),
            outputs=st.get("outputs") or {},
            message=st.get("message"),
            next_try_at=parse_iso(st.get("nextRetryTime")),
            ready_at=parse_iso(st.get("readyTime")),
            first_poke_at=parse_iso(st.get("firstPokeTime")),
            pokes=st.get("pokes") or 0,
            item=tr["spec"].get("item"),
            pods=tuple(unrecorded),
        )
    found.started_at = started_at(run_status, [*taskruns, *pods])
    return found


def launched_of(taskrun_meta: dict[str, Any]) -> int:
    """The attempt a TaskRun says was launched last (its ``kascade.io/attempt``)."""
    return _int((taskrun_meta.get("annotations") or {}).get(ANN_LAUNCHED))


def started_at(run_status: dict[str, Any], objects: list[dict[str, Any]]) -> datetime | None:
    """When the run started: its status says so once written; before that, it started no
    later than the first TaskRun or pod it made."""
    recorded = parse_iso(run_status.get("startTime"))
    if recorded is not None:
        return recorded
    made = [parse_iso(o["metadata"].get("creationTimestamp")) for o in objects]
    return min((m for m in made if m is not None), default=None)
