"""Task attempt logs, for ``kascade logs`` and the web UI: one reading path, two stores.

On a cluster an attempt's log is its pod's log (``PodLogs``); locally it is the
file the local runner wrote (``FileLogs``). Logs that outlive the pod come from
``PodLogs.archive`` (``integrations/log_archive.LogArchive``, the object store the
operator writes them to): when the pod is gone, the reader asks the archive
instead of failing. Without one, or when the archive has no log either, the user
is told which pod and attempt, and why.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from kascade.ui import model
from kascade.ui.readers import NotFound

POLL_SECONDS = 0.5
NOT_READY_SECONDS = 1.0


class TaskNotYet(NotFound):
    """The run exists and runs, but this task instance has not been created yet."""


@dataclass(frozen=True)
class AttemptRef:
    """Where one attempt's log is: a pod on a cluster, a file locally."""

    namespace: str
    run: str
    task: str
    number: int
    pod: str | None = None
    path: Path | None = None
    archive_note: str | None = None
    """What the TaskRun says the log archive did with this attempt's log, if anything."""


class Archive(Protocol):
    """Logs kept after the pod is gone (the object-store archive plugs in here)."""

    def chunks(self, ref: AttemptRef) -> Iterator[bytes]: ...


class LogSource(Protocol):
    def task(self, namespace: str, run: str, key: str) -> dict[str, Any]: ...

    def ref(self, task: dict[str, Any], namespace: str, number: int) -> AttemptRef: ...

    def chunks(
        self, ref: AttemptRef, *, follow: bool, ended: Callable[[], bool]
    ) -> Iterator[bytes]: ...


def pick_try(task: dict[str, Any], number: int | None) -> dict[str, Any]:
    tries = task.get("tries") or []
    if not tries:
        raise NotFound(f"task {task['key']} has no attempt yet (state {task['state']})")
    if number is None:
        return dict(tries[-1])
    for t in tries:
        if t.get("number") == number:
            return dict(t)
    have = ", ".join(str(t.get("number")) for t in tries)
    raise NotFound(f"task {task['key']} has no attempt {number} (attempts: {have})")


class PodLogs:
    """Cluster logs: the pod of each attempt (named in its TaskRun's status)."""

    def __init__(self, kube: Any, archive: Archive | None = None) -> None:
        self.kube = kube
        self.archive = archive

    def task(self, namespace: str, run: str, key: str) -> dict[str, Any]:
        from kascade.actions import taskruns_of
        from kascade.kube.objects import attempt_pods

        trs = taskruns_of(self.kube, namespace, run)
        if key not in trs:
            body = self.kube.get("pipelineruns", namespace, run)
            if body is None:
                raise NotFound(f"pipelinerun {namespace}/{run} not found")
            if (body.get("status") or {}).get("phase") in model.FINISHED:
                raise NotFound(f"run {run} has no task instance {key!r}")
            raise TaskNotYet(f"run {run} has no task instance {key!r} (yet)")
        task = model.task_from_taskrun(trs[key])
        if task["state"] in model.TASK_DONE:
            return task
        return model.with_pod_attempts(task, attempt_pods(self.kube, namespace, run, key))

    def ref(self, task: dict[str, Any], namespace: str, number: int) -> AttemptRef:
        chosen = pick_try(task, number)
        return AttemptRef(
            namespace,
            task["run"],
            task["key"],
            number,
            pod=chosen.get("pod"),
            archive_note=_archive_note(chosen),
        )

    def chunks(
        self, ref: AttemptRef, *, follow: bool, ended: Callable[[], bool]
    ) -> Iterator[bytes]:
        from kascade.kube.logs import LogGone, LogNotReady, pod_log

        if ref.pod is None:
            raise NotFound(f"attempt {ref.number} of {ref.task} had no pod (it never started)")
        while True:
            try:
                yield from pod_log(self.kube, ref.namespace, ref.pod, follow=follow)
                return
            except LogNotReady as exc:
                if not follow or ended():
                    raise NotFound(f"no log yet: {exc}") from None
                time.sleep(NOT_READY_SECONDS)
            except LogGone:
                if self.archive is None:
                    raise NotFound(
                        f"the pod {ref.pod} of attempt {ref.number} is gone and no log archive "
                        "is configured (logs live as long as the run's pods)"
                    ) from None
                yield from _archived(self.archive, ref)
                return


def _archive_note(attempt: dict[str, Any]) -> str:
    """Why the archive may lack an attempt's log, from what its TaskRun records."""
    archived = attempt.get("logArchived")
    if archived is False:
        return f"the operator could not archive it: {attempt.get('logArchiveMessage')}"
    if archived:
        return "the operator archived it, but the object is gone (a lifecycle rule?)"
    if attempt.get("endTime"):
        return "the operator has not recorded archiving it (yet, or no store then)"
    return "the attempt has not ended"


def _archived(archive: Archive, ref: AttemptRef) -> Iterator[bytes]:
    """The archived log; a NotFound naming the pod and the attempt, and why, otherwise."""
    from kascade.integrations.log_archive import ArchiveUnavailable, LogNotArchived

    gone = f"the pod {ref.pod} of attempt {ref.number} of {ref.task} is gone"
    try:
        yield from archive.chunks(ref)
    except LogNotArchived:
        why = ref.archive_note or "no object for it"
        raise NotFound(f"{gone} and the log archive has no log for it: {why}") from None
    except ArchiveUnavailable as exc:  # it names the pod and the attempt itself
        raise NotFound(str(exc)) from None


class FileLogs:
    """Local logs: ``logs/<task>/attempt-<n>.log`` in the run's directory."""

    def __init__(self, reader: Any) -> None:
        self.reader = reader  # a readers.LocalReader

    def task(self, namespace: str, run: str, key: str) -> dict[str, Any]:
        for task in self.reader.tasks(namespace, run):
            if task["key"] == key:
                return dict(task)
        raise NotFound(f"run {run} has no task instance {key!r}")

    def ref(self, task: dict[str, Any], namespace: str, number: int) -> AttemptRef:
        pick_try(task, number)
        record = self.reader.record(task["run"])
        path = self.reader.history.log_path(record, task["key"], number)
        return AttemptRef(namespace, task["run"], task["key"], number, path=path)

    def chunks(
        self, ref: AttemptRef, *, follow: bool, ended: Callable[[], bool]
    ) -> Iterator[bytes]:
        assert ref.path is not None
        path = ref.path
        while not path.exists():
            if not follow or ended():
                raise NotFound(f"no log file for attempt {ref.number} of {ref.task} ({path})")
            time.sleep(POLL_SECONDS)
        with open(path, "rb") as f:
            while True:
                data = f.read(65536)
                if data:
                    yield data
                    continue
                if not follow or ended():
                    rest = f.read()
                    if rest:
                        yield rest
                    return
                time.sleep(POLL_SECONDS)


def attempt_ended(source: LogSource, namespace: str, run: str, key: str, number: int) -> bool:
    """True once that attempt has an end time, or the task moved past it."""
    try:
        task = source.task(namespace, run, key)
    except NotFound:
        return True
    for t in task.get("tries") or []:
        if t.get("number") == number:
            return bool(t.get("endTime")) or task.get("state") in model.TASK_DONE
    return task.get("state") in model.TASK_DONE


def follow_task(
    source: LogSource,
    namespace: str,
    run: str,
    key: str,
    *,
    attempt: int | None,
    follow: bool,
    on_attempt: Callable[[int], None] = lambda n: None,
) -> Iterator[bytes]:
    """The log of one attempt (the latest by default); following, every later attempt too.

    Following stops when the task is done (success, failed, skipped...), so a
    retried task streams attempt after attempt, as Airflow's log view does.
    """
    task = _task(source, namespace, run, key, follow)
    number = attempt if attempt is not None else _latest(task)
    while True:
        if number is None:  # following a task that has not started
            time.sleep(POLL_SECONDS * 2)
            task = source.task(namespace, run, key)
            if task.get("state") in model.TASK_DONE and not task.get("tries"):
                return
            number = _latest(task)
            continue
        ref = source.ref(task, namespace, number) if task.get("tries") else None
        if ref is None:
            pick_try(task, number)  # raises the "no attempt yet" message
            return
        on_attempt(number)
        yield from source.chunks(
            ref,
            follow=follow,
            ended=lambda n=number: attempt_ended(source, namespace, run, key, n),  # type: ignore[misc]
        )
        if not follow or attempt is not None:
            return
        number = _wait_next(source, namespace, run, key, number)
        if number is None:
            return
        task = source.task(namespace, run, key)


def _task(source: LogSource, namespace: str, run: str, key: str, follow: bool) -> dict[str, Any]:
    """The task instance; following, wait for it to be created (its upstream may still run)."""
    while True:
        try:
            return source.task(namespace, run, key)
        except TaskNotYet:
            if not follow:
                raise
        time.sleep(POLL_SECONDS * 2)


def _latest(task: dict[str, Any]) -> int | None:
    tries = task.get("tries") or []
    return int(tries[-1]["number"]) if tries else None


def _wait_next(source: LogSource, namespace: str, run: str, key: str, after: int) -> int | None:
    """The next attempt's number once it starts; None when the task is done."""
    while True:
        task = source.task(namespace, run, key)
        newer = [int(t["number"]) for t in task.get("tries") or [] if int(t["number"]) > after]
        if newer:
            return min(newer)
        if task.get("state") in model.TASK_DONE:
            return None
        time.sleep(POLL_SECONDS * 2)
