"""The log archive in the operator, on a fake API server and the real versitygw server:
the outcome of the last attempts' logs comes after the run's final summary, is written
even when the watch reports the end before the driver retires, is marked on the run
(``logArchivePending``) until stored, and is finished by the next operator when one
stopped in between (``controller/archive_sweep.py``); what is kept has the pod's Secrets
masked."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fake_kube import FakeKube
from test_log_archive import NOW
from test_operator_features_b import _end, _pipeline, _run

import servers
from kascade.controller import log_archiving
from kascade.controller.log_archiving import ArchiveJob, LogArchiver
from kascade.controller.world import World
from kascade.integrations.log_archive import LogArchive, cut_note
from kascade.integrations.objectstore import ObjectStore
from kascade.integrations.settings import ObjectStoreSettings


@pytest.fixture()
def real_archive(s3_server: servers.S3Server) -> LogArchive:
    """The archive in a bucket of its own on the real versitygw server."""
    data = {**s3_server.settings(), "bucket": s3_server.make_bucket()}
    return LogArchive(ObjectStore(ObjectStoreSettings.from_data(data, "test"), prefix="kascade"))


@contextmanager
def archiving(kube: FakeKube, archive: LogArchive) -> Iterator[LogArchiver]:
    """The operator's archiver over ``kube`` and ``archive``, configured in the block."""
    archiver = LogArchiver(kube, archive, emit=lambda *_: None)  # type: ignore[arg-type]
    log_archiving.configure(archiver)
    try:
        yield archiver
    finally:
        log_archiving.configure(None)


def test_the_outcome_is_written_when_the_runs_end_came_back_before_its_driver_retired(
    real_archive: LogArchive,
) -> None:
    """The watch event of the run's final status may be handled while the driver is still
    finishing (its status patch has returned, the driver has not retired yet). The run
    ended; it was not deleted or reloaded: the archive's outcome must still be written."""
    kube = FakeKube()
    spec = {"defaults": {"image": "busybox:1.36"}, "tasks": [{"name": "t", "command": ["x"]}]}
    _pipeline(kube, spec)
    run = _run(kube, "r", spec)

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        world = World(kube, lambda *_: None, clock=lambda: NOW)
        patch_status = kube.patch_status

        def patch_then_watch(plural: str, namespace: str, name: str, status: Any) -> None:
            patch_status(plural, namespace, name, status)
            if plural == "pipelineruns" and status.get("phase") == "success":
                body = kube.get("pipelineruns", namespace, name)
                watched = world.on_run("MODIFIED", body)  # type: ignore[arg-type]
                asyncio.run_coroutine_threadsafe(watched, loop).result()

        kube.patch_status = patch_then_watch  # type: ignore[method-assign]
        with archiving(kube, real_archive) as archiver:
            await world.on_run("ADDED", run)
            kube.logs[("ns", "r-t-a1", "task")] = "kept\n"
            (driver,) = world.drivers.values()
            await world.on_pod("MODIFIED", _end(kube, "r-t-a1"))
            assert not world.drivers  # the run ended: its driver is gone
            await archiver.drain()
            await driver.flush()  # the outcome is written in the attempt

    asyncio.run(scenario())
    (attempt,) = kube.get("taskruns", "ns", "r-t")["status"]["attempts"]  # type: ignore[index]
    assert (attempt.get("logArchived"), attempt.get("logArchiveMessage")) == (True, None)


def test_the_run_says_logs_are_pending_until_every_outcome_is_stored(
    real_archive: LogArchive,
) -> None:
    """The last summary is written before the last attempts' logs are archived: it says
    ``logArchivePending``, and the mark goes once every outcome is in its TaskRun."""
    kube = FakeKube()
    spec = {"defaults": {"image": "busybox:1.36"}, "tasks": [{"name": "t", "command": ["x"]}]}
    _pipeline(kube, spec)
    run = _run(kube, "r", spec)
    seen: dict[str, Any] = {}

    async def scenario() -> None:
        with archiving(kube, real_archive) as archiver:
            world = World(kube, lambda *_: None, clock=lambda: NOW)
            await world.on_run("ADDED", run)
            kube.logs[("ns", "r-t-a1", "task")] = "kept\n"
            (driver,) = world.drivers.values()
            await world.on_pod("MODIFIED", _end(kube, "r-t-a1"))
            stored = kube.get("pipelineruns", "ns", "r")["status"]  # type: ignore[index]
            seen["at the end"] = (stored["phase"], stored.get("logArchivePending"))
            await archiver.drain()
            await driver.flush()  # the outcome is written, then the mark is cleared
            await asyncio.sleep(0.05)

    asyncio.run(scenario())
    assert seen["at the end"] == ("success", True)
    status = kube.get("pipelineruns", "ns", "r")["status"]  # type: ignore[index]
    assert (status["phase"], status.get("logArchivePending")) == ("success", None)
    patches = [w[3] for w in kube.writes if w[:3] == ("patch", "pipelineruns/status", "r")]
    assert patches[-1] == {"logArchivePending": None}  # after the outcome, last
    assert kube.get("taskruns", "ns", "r-t")["status"]["attempts"][0]["logArchived"] is True  # type: ignore[index]


def test_a_restarted_operator_archives_the_logs_a_finished_run_left_pending(
    real_archive: LogArchive,
) -> None:
    """The operator stopped after the run's end, before its last log was archived: the
    next one finds the run marked, archives what is missing, writes the outcome and
    clears the mark. A run it did not find marked costs no request."""
    kube = FakeKube()
    tasks = [{"name": "t", "command": ["x"]}, {"name": "u", "command": ["x"], "dependsOn": ["t"]}]
    spec = {"defaults": {"image": "busybox:1.36"}, "tasks": tasks}
    _pipeline(kube, spec)
    run = _run(kube, "r", spec)

    async def first_life() -> None:  # the archive never gets to the last attempt
        with archiving(kube, real_archive) as archiver:
            world = World(kube, lambda *_: None, clock=lambda: NOW)
            await world.on_run("ADDED", run)
            kube.logs[("ns", "r-t-a1", "task")] = "first\n"
            (driver,) = world.drivers.values()
            await world.on_pod("MODIFIED", _end(kube, "r-t-a1"))
            await driver.flush()
            await archiver.drain()
            await driver.flush()  # t's outcome is stored
            kube.logs[("ns", "r-u-a1", "task")] = "last\n"
            archiver.stop()
            archiver.submit = lambda job, done: None  # type: ignore[method-assign]  # stops here
            await world.on_pod("MODIFIED", _end(kube, "r-u-a1"))

    async def second_life() -> None:
        with archiving(kube, real_archive) as archiver:
            world = World(kube, lambda *_: None, clock=lambda: NOW)
            finished = kube.get("pipelineruns", "ns", "r")
            await world.on_run("MODIFIED", finished)  # type: ignore[arg-type]
            assert not world.drivers  # a finished run is not started again
            for _ in range(20):
                await asyncio.sleep(0.02)
            await archiver.drain()
            for _ in range(20):
                await asyncio.sleep(0.02)

    asyncio.run(first_life())
    status = kube.get("pipelineruns", "ns", "r")["status"]  # type: ignore[index]
    assert (status["phase"], status.get("logArchivePending")) == ("success", True)
    last = kube.get("taskruns", "ns", "r-u")["status"]["attempts"][0]  # type: ignore[index]
    assert last.get("logArchived") is None
    first_writes = len(kube.writes)

    asyncio.run(second_life())
    assert real_archive.read("ns", "r", "u", 1) == b"last\n"
    (last,) = kube.get("taskruns", "ns", "r-u")["status"]["attempts"]  # type: ignore[index]
    assert (last["logArchived"], last.get("logArchiveMessage")) == (True, None)
    (first,) = kube.get("taskruns", "ns", "r-t")["status"]["attempts"]  # type: ignore[index]
    assert first["logArchived"] is True
    assert kube.get("pipelineruns", "ns", "r")["status"].get("logArchivePending") is None  # type: ignore[index]
    later = [w[:3] for w in kube.writes[first_writes:] if w[0] != "get"]
    assert later == [("patch", "taskruns/status", "r-u"), ("patch", "pipelineruns/status", "r")]

    writes = len(kube.writes)  # once cleared, a restart sweeps nothing
    asyncio.run(second_life())
    assert len(kube.writes) == writes


def test_the_archived_log_has_the_secrets_its_pod_uses_masked(s3_server: servers.S3Server) -> None:
    """Masked after the cut: whether the log was cut is decided on the log as read."""
    kube = FakeKube()
    kube.create("secrets", "ns", {"metadata": {"name": "db"}, "stringData": {"pw": "hunter2-pw"}})
    ref = {"secretKeyRef": {"name": "db", "key": "pw"}}
    container = {"name": "task", "env": [{"name": "PW", "valueFrom": ref}]}
    kube.create("pods", "ns", {"metadata": {"name": "r-t-a1"}, "spec": {"containers": [container]}})
    said = "connecting with hunter2-pw\n"
    kube.logs[("ns", "r-t-a1", "task")] = said + "x" * 100
    data = {**s3_server.settings(), "bucket": s3_server.make_bucket()}
    archive = LogArchive(ObjectStore(ObjectStoreSettings.from_data(data, "test")), max_bytes=40)
    outcomes = []

    async def scenario() -> None:
        archiver = LogArchiver(kube, archive, emit=lambda *_: None)  # type: ignore[arg-type]
        taskrun = {"metadata": {"name": "r-t", "namespace": "ns", "uid": "u"}}
        job = ArchiveJob("ns", "p", "r", "t", 1, "r-t-a1", taskrun)
        archiver.submit(job, lambda _job, outcome: outcomes.append(outcome.archived))
        await archiver.drain()
        archiver.stop()

    asyncio.run(scenario())
    assert outcomes == [True]
    kept = "connecting with ***\n" + "x" * (40 - len(said))
    assert archive.read("ns", "r", "t", 1) == kept.encode() + cut_note(40)
