"""Which finished pods a run keeps: the newest pods of succeeded attempts (and of sensor pokes
that were not met), up to a number; pods of failed attempts always.

A node slows down with every pod it keeps, finished ones included (the kubelet and the
container runtime go through all of them): a 2,000-task run saw its pods wait 10 s to
start at first and 43 s at the end, and its rate fall from 2.5 to 0.9 tasks/s. Deleting
the pods of succeeded attempts beyond the newest ``keep`` holds that flat (Airflow's
Kubernetes executor deletes every succeeded worker pod; Argo has ``podGC``). A pod is
deleted only once its TaskRun's status recording its end is stored: nothing a restarted
operator needs is lost (``observed.py`` reads that record, not the pod).

Pure: the driver deletes what ``written`` returns.
"""

from __future__ import annotations

import os
from collections import deque
from typing import Any

from kascade.api.protocol import SENSOR_NOT_MET

KEEP_DEFAULT = 100


def keep_from_env() -> int:
    """``kascade operator --keep-succeeded-pods`` (-1: keep every pod)."""
    return int(os.environ.get("KASCADE_KEEP_SUCCEEDED_PODS", str(KEEP_DEFAULT)))


class FinishedPods:
    def __init__(self, keep: int) -> None:
        self.keep = keep
        self.kept: deque[str] = deque()
        self.seen: set[str] = set()

    def written(self, status: dict[str, Any], sensor: bool, archiving: bool = False) -> list[str]:
        """A TaskRun status is stored: the pods to delete now (oldest first).

        With a log archive (``archiving``), a task's pod counts only once the status also
        records that its log is archived or that the archive gave up (``logArchived``):
        the archive hands the pod over by writing that, so no pod goes before its log is
        kept (sensors' pokes are not archived)."""
        if self.keep < 0:
            return []
        for attempt in status.get("attempts") or []:
            pod = attempt.get("podName")
            if not pod or pod in self.seen or not attempt.get("endTime"):
                continue
            if archiving and not sensor and attempt.get("logArchived") is None:
                continue
            ok = attempt.get("exitCode") == 0 and not attempt.get("reason")
            not_met = sensor and attempt.get("exitCode") == SENSOR_NOT_MET
            if ok or not_met:
                self.seen.add(pod)
                self.kept.append(pod)
        doomed = []
        while len(self.kept) > self.keep:
            doomed.append(self.kept.popleft())
        return doomed
