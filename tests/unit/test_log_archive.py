"""The log archive: its keys, its cap, the retry/gap decision (fake clock), the per-run
book, and the operator writing a finished attempt's log to the real versitygw server."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from fake_kube import FakeKube
from prometheus_client import REGISTRY
from test_operator_features_b import _end, _pipeline, _run

import servers
from kascade.controller import log_archiving
from kascade.controller.log_archiving import (
    ArchiveJob,
    LogArchiver,
    Outcome,
    RetryPolicy,
    RunLogs,
)
from kascade.controller.retention import FinishedPods
from kascade.controller.world import World
from kascade.integrations.log_archive import (
    ArchiveUnavailable,
    LogArchive,
    LogKeyError,
    LogNotArchived,
    capped,
    cut_note,
    from_environment,
    log_key,
)
from kascade.integrations.objectstore import ObjectStore, ObjectStoreError
from kascade.integrations.settings import ObjectStoreSettings, SettingsError

NOW = datetime(2026, 4, 30, 12, 0, tzinfo=UTC)


# -- keys and the cap -----------------------------------------------------------------------
def test_a_log_key_is_built_from_its_parts() -> None:
    assert log_key("team-a", "etl-manual-1", "load.rows[3]", 2) == (
        "logs/team-a/etl-manual-1/load.rows[3]/attempt-2.log"
    )


@pytest.mark.parametrize(
    ("parts", "field"),
    [
        (("../x", "r", "t", 1), "namespace"),
        (("Team", "r", "t", 1), "namespace"),
        (("ns", "r/../other", "t", 1), "run"),
        (("ns", "", "t", 1), "run"),
        (("ns", "r", "a/b", 1), "task"),
        (("ns", "r", "a..b", 1), "task"),
        (("ns", "r", "..", 1), "task"),
        (("ns", "r", "t", 0), "attempt"),
        (("ns", "r", "t", True), "attempt"),
    ],
)
def test_a_log_key_refuses_a_part_that_is_not_a_name(parts: Any, field: str) -> None:
    with pytest.raises(LogKeyError, match=f"^log archive: {field} "):
        log_key(*parts)


def test_a_log_over_the_cap_keeps_its_first_bytes_and_says_it_was_cut() -> None:
    assert capped(b"x" * 10, 10) == b"x" * 10
    cut = capped(b"x" * 11, 10)
    assert cut == b"x" * 10 + cut_note(10)
    assert b"longer than 10 bytes" in cut


def test_settings_from_the_environment(s3_server: servers.S3Server) -> None:
    store = {f"KASCADE_STORE_{k}": v for k, v in s3_server.settings(bucket="logs-b").items()}
    assert from_environment({}) is None  # no store: logs live with their pods
    assert from_environment({**store, "KASCADE_LOG_ARCHIVE": "off"}) is None
    archive = from_environment({**store, "KASCADE_LOG_ARCHIVE_MAX_BYTES": "4096"})
    assert archive is not None
    assert (archive.max_bytes, archive.where) == (4096, "s3://logs-b/")
    with pytest.raises(SettingsError, match="KASCADE_LOG_ARCHIVE_MAX_BYTES='12': a number"):
        from_environment({**store, "KASCADE_LOG_ARCHIVE_MAX_BYTES": "12"})
    with pytest.raises(SettingsError, match="KASCADE_LOG_ARCHIVE='maybe': give on or off"):
        from_environment({**store, "KASCADE_LOG_ARCHIVE": "maybe"})
    no_bucket = {k: v for k, v in store.items() if k != "KASCADE_STORE_bucket"}
    with pytest.raises(SettingsError, match="KASCADE_STORE_bucket: the log archive needs"):
        from_environment(no_bucket)


# -- the retry / gap decision ---------------------------------------------------------------
def test_the_retry_policy_backs_off_then_gives_up() -> None:
    policy = RetryPolicy(tries=5, first_delay=2.0, factor=2.0, max_delay=10.0)
    assert [policy.delay_after(n) for n in range(1, 7)] == [2.0, 4.0, 8.0, 10.0, None, None]


class FlakyStore:
    """An in-memory bucket that refuses the first ``down`` writes (a store that is down)."""

    def __init__(self, down: int) -> None:
        self.down = down
        self.objects: dict[str, bytes] = {}
        self.prefix, self.bucket = "", "bucket"

    def put(self, key: str, data: bytes, *, content_type: str | None = None) -> None:
        if self.down > 0:
            self.down -= 1
            raise ObjectStoreError(f"put s3://bucket/{key}: Connection refused")
        self.objects[key] = data


@dataclass
class Harness:
    kube: FakeKube
    store: FlakyStore
    archiver: LogArchiver
    sleeps: list[float]
    events: list[tuple[str, str, str]]
    outcomes: list[Outcome]

    def run(self, *jobs: ArchiveJob) -> None:
        async def scenario() -> None:
            for job in jobs:
                self.archiver.submit(job, lambda _job, outcome: self.outcomes.append(outcome))
            await self.archiver.drain()
            self.archiver.stop()

        asyncio.run(scenario())


def _harness(down: int, *, log: str | None = "hello\n", queue_size: int = 10) -> Harness:
    kube = FakeKube()
    kube.create("pods", "ns", {"metadata": {"name": "r-t-a1"}})
    if log is not None:
        kube.logs[("ns", "r-t-a1", "task")] = log
    store = FlakyStore(down)
    sleeps: list[float] = []
    events: list[tuple[str, str, str]] = []

    async def fake_sleep(seconds: float) -> None:  # the fake clock: record, do not wait
        sleeps.append(seconds)

    archiver = LogArchiver(
        kube,  # type: ignore[arg-type]
        LogArchive(store, max_bytes=1024),  # type: ignore[arg-type]
        emit=lambda obj, kind, reason, message: events.append((kind, reason, message)),
        policy=RetryPolicy(tries=4, first_delay=1.0),
        sleep=fake_sleep,
        queue_size=queue_size,
        workers=1,
    )
    return Harness(kube, store, archiver, sleeps, events, [])


def _job(attempt: int = 1) -> ArchiveJob:
    ref = {"kind": "TaskRun", "metadata": {"name": "r-t", "namespace": "ns", "uid": "u"}}
    return ArchiveJob("ns", "p", "r", "t", attempt, "r-t-a1", ref)


def _failures() -> float:
    return (
        REGISTRY.get_sample_value(
            "kascade_log_archive_failures_total", {"namespace": "ns", "pipeline": "p"}
        )
        or 0.0
    )


def test_a_store_that_comes_back_gets_the_log_after_backoff() -> None:
    h = _harness(down=2)
    before = _failures()
    h.run(_job())
    assert h.outcomes == [Outcome(True)]
    assert h.sleeps == [1.0, 2.0]
    assert h.store.objects == {"logs/ns/r/t/attempt-1.log": b"hello\n"}
    assert h.events == [] and _failures() == before
    reads = [w for w in h.kube.writes if w[1] == "pods/log"]
    assert reads == [("get", "pods/log", "r-t-a1", "task")] * 3  # read again for each try


def test_a_store_that_stays_down_is_a_reported_gap_after_bounded_tries() -> None:
    h = _harness(down=100)
    before = _failures()
    h.run(_job())
    assert h.sleeps == [1.0, 2.0, 4.0]  # 4 tries, then it gives up
    (outcome,) = h.outcomes
    assert not outcome.archived and outcome.message is not None
    assert "Connection refused (after 4 tries)" in outcome.message
    ((kind, reason, message),) = h.events
    assert (kind, reason) == ("Warning", "LogNotArchived")
    assert message.startswith("the log of attempt 1 (pod r-t-a1) was not archived: ")
    assert _failures() == before + 1
    assert h.store.objects == {}


def test_a_pod_that_is_gone_is_a_gap_at_once() -> None:
    h = _harness(down=0, log=None)
    h.run(_job())
    assert h.sleeps == []
    (outcome,) = h.outcomes
    assert not outcome.archived and "the pod's log could not be read" in (outcome.message or "")


def test_a_full_queue_reports_the_gap_instead_of_waiting() -> None:
    h = _harness(down=0, queue_size=1)

    async def scenario() -> None:
        done = lambda _job, outcome: h.outcomes.append(outcome)  # noqa: E731
        h.archiver.submit(_job(1), done)
        h.archiver.submit(_job(2), done)  # the queue holds one: no wait, a gap
        assert [o.archived for o in h.outcomes] == [False]
        await h.archiver.drain()
        h.archiver.stop()

    asyncio.run(scenario())
    assert [o.archived for o in h.outcomes] == [False, True]
    assert "the archive queue is full (1 logs waiting)" in (h.outcomes[0].message or "")


# -- one run's book -----------------------------------------------------------------------------
def _status(*attempts: dict[str, Any]) -> dict[str, Any]:
    return {"attempts": list(attempts)}


ENDED = {"number": 1, "podName": "r-t-a1", "startTime": "s", "endTime": "e"}


def test_the_book_queues_each_ended_attempt_once() -> None:
    logs = RunLogs()
    running = {"number": 2, "podName": "r-t-a2", "startTime": "s"}
    never_started = {"number": 3, "podName": "r-t-a3", "endTime": "e"}
    assert logs.due("t", _status(ENDED, running, never_started)) == [(1, "r-t-a1")]
    assert logs.due("t", _status(ENDED)) == []  # queued already
    logs.settle("t", 1, Outcome(False, "store down"))
    assert logs.of("t") == {1: (False, "store down")}
    assert logs.due("t", _status(ENDED)) == []  # settled: never again


def test_the_book_is_restored_from_the_stored_taskruns() -> None:
    logs = RunLogs()
    stored = {**ENDED, "logArchived": True}
    logs.restore({"t[2]": _status(stored), "u": {}})
    assert logs.of("t[2]") == {1: (True, None)}
    assert logs.due("t[2]", _status(ENDED)) == []


# -- the operator, end to end on a fake API server and the real S3 server ------------------------
@pytest.fixture()
def real_archive(s3_server: servers.S3Server) -> Any:
    bucket = s3_server.make_bucket()
    settings = ObjectStoreSettings.from_data({**s3_server.settings(), "bucket": bucket}, "test")
    return LogArchive(ObjectStore(settings, prefix="kascade"), max_bytes=64)


def test_the_operator_archives_a_finished_attempts_log(real_archive: LogArchive) -> None:
    kube = FakeKube()
    spec = {"defaults": {"image": "busybox:1.36"}, "tasks": [{"name": "t", "command": ["x"]}]}
    _pipeline(kube, spec)
    run = _run(kube, "r", spec)

    async def scenario() -> None:
        archiver = LogArchiver(kube, real_archive, emit=lambda o, k, r, m: None)  # type: ignore[arg-type]
        log_archiving.configure(archiver)
        try:
            world = World(kube, lambda *_: None, clock=lambda: NOW)
            await world.on_run("ADDED", run)
            (pod_name,) = kube.names("pods")
            kube.logs[("ns", pod_name, "task")] = "line\n" * 20  # 100 bytes: over the cap of 64
            pod = _end(kube, pod_name)
            (driver,) = world.drivers.values()
            await world.on_pod("MODIFIED", pod)
            await driver.flush()  # the end is stored: that hands the attempt over
            await archiver.drain()
            await driver.flush()  # the outcome is written in the attempt (the run is done)
        finally:
            log_archiving.configure(None)

    asyncio.run(scenario())
    taskrun = kube.get("taskruns", "ns", "r-t")
    assert taskrun is not None
    (attempt,) = taskrun["status"]["attempts"]
    assert (attempt["logArchived"], attempt["logArchiveMessage"]) == (True, None)
    assert kube.get("pipelineruns", "ns", "r")["status"]["phase"] == "success"  # type: ignore[index]
    stored = real_archive.read("ns", "r", "t", 1)
    assert stored == (b"line\n" * 20)[:64] + cut_note(64)

    @dataclass
    class Ref:
        namespace: str = "ns"
        run: str = "r"
        task: str = "t"
        number: int = 1
        pod: str | None = "r-t-a1"

    assert b"".join(real_archive.chunks(Ref())) == stored
    with pytest.raises(LogNotArchived, match=r"attempt 2 of t in run r: pod r-t-a1 is gone and "):
        list(real_archive.chunks(Ref(number=2)))


def test_a_store_that_cannot_be_read_says_where_never_the_secret(
    s3_server: servers.S3Server,
) -> None:
    bucket = s3_server.make_bucket()
    data = {**s3_server.settings(), "bucket": bucket, "secretAccessKey": "wrong-secret-value"}
    archive = LogArchive(ObjectStore(ObjectStoreSettings.from_data(data, "test"), retries=0))
    with pytest.raises(ArchiveUnavailable) as caught:
        archive.read("ns", "r", "t", 1)
    assert f"s3://{bucket}/logs/ns/r/t/attempt-1.log" in str(caught.value)
    assert "wrong-secret-value" not in str(caught.value)


def test_a_restarted_operator_archives_what_ended_while_it_was_away(
    real_archive: LogArchive,
) -> None:
    kube = FakeKube()
    tasks = [{"name": "t", "command": ["x"]}, {"name": "u", "command": ["x"], "dependsOn": ["t"]}]
    spec = {"defaults": {"image": "busybox:1.36"}, "tasks": tasks}
    _pipeline(kube, spec)
    run = _run(kube, "r", spec)

    async def first_life() -> None:  # no archive configured: the attempt ends unarchived
        world = World(kube, lambda *_: None, clock=lambda: NOW)
        await world.on_run("ADDED", run)
        kube.logs[("ns", "r-t-a1", "task")] = "before the restart\n"
        (driver,) = world.drivers.values()
        await world.on_pod("MODIFIED", _end(kube, "r-t-a1"))  # the run goes on (u runs)
        await driver.flush()

    async def second_life() -> None:
        archiver = LogArchiver(kube, real_archive, emit=lambda *_: None)  # type: ignore[arg-type]
        log_archiving.configure(archiver)
        try:
            world = World(kube, lambda *_: None, clock=lambda: NOW)
            await world.on_run("MODIFIED", kube.get("pipelineruns", "ns", "r"))  # type: ignore[arg-type]
            await archiver.drain()
            for driver in list(world.drivers.values()):
                await driver.flush()
        finally:
            log_archiving.configure(None)

    asyncio.run(first_life())
    stored = kube.get("taskruns", "ns", "r-t")["status"]["attempts"][0]  # type: ignore[index]
    assert stored.get("logArchived") is None
    asyncio.run(second_life())
    assert real_archive.read("ns", "r", "t", 1) == b"before the restart\n"


# -- the pod retention waits for the archive -------------------------------------------------------
def test_with_an_archive_retention_counts_a_pod_only_once_its_log_is_settled() -> None:
    ended = {"number": 1, "podName": "a-a1", "endTime": "x", "exitCode": 0}
    pods = FinishedPods(keep=0)
    assert pods.written(_status(ended), sensor=False, archiving=True) == []
    settled = {**ended, "logArchived": False}
    assert pods.written(_status(settled), sensor=False, archiving=True) == ["a-a1"]
    poke = {**ended, "podName": "s-a1"}  # sensors' pokes are not archived: no wait
    assert FinishedPods(keep=0).written(_status(poke), sensor=True, archiving=True) == ["s-a1"]
    assert FinishedPods(keep=0).written(_status(ended), sensor=False) == ["a-a1"]


def test_the_archive_hands_the_pod_to_deletion(
    real_archive: LogArchive, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KASCADE_KEEP_SUCCEEDED_PODS", "0")
    kube = FakeKube()
    tasks = [{"name": "t", "command": ["x"]}, {"name": "u", "command": ["x"], "dependsOn": ["t"]}]
    spec = {"defaults": {"image": "busybox:1.36"}, "tasks": tasks}
    _pipeline(kube, spec)
    run = _run(kube, "r", spec)
    seen: dict[str, bool] = {}

    async def scenario() -> None:
        archiver = LogArchiver(kube, real_archive, emit=lambda *_: None)  # type: ignore[arg-type]
        log_archiving.configure(archiver)
        try:
            world = World(kube, lambda *_: None, clock=lambda: NOW)
            await world.on_run("ADDED", run)
            kube.logs[("ns", "r-t-a1", "task")] = "kept before the pod goes\n"
            (driver,) = world.drivers.values()
            gate = asyncio.Event()
            real_write = real_archive.write

            def slow_write(*args: Any, **kwargs: Any) -> str:  # answers once we looked
                asyncio.run_coroutine_threadsafe(gate.wait(), loop).result()
                return real_write(*args, **kwargs)

            loop = asyncio.get_running_loop()
            real_archive.write = slow_write  # type: ignore[method-assign]
            await world.on_pod("MODIFIED", _end(kube, "r-t-a1"))
            await driver.flush()  # the end is stored; the log is being archived
            await asyncio.sleep(0.05)
            seen["pod kept while archiving"] = kube.get("pods", "ns", "r-t-a1") is not None
            gate.set()
            await archiver.drain()
            await driver.flush()  # logArchived: true is stored: the pod may go now
            await asyncio.sleep(0.05)
            seen["pod deleted after"] = kube.get("pods", "ns", "r-t-a1") is None
        finally:
            log_archiving.configure(None)

    asyncio.run(scenario())
    assert seen == {"pod kept while archiving": True, "pod deleted after": True}
    assert real_archive.read("ns", "r", "t", 1) == b"kept before the pod goes\n"
