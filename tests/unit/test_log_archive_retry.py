"""The log archive's retries wait off the workers: a job whose store write failed frees
its worker at once, waits for its retry on a fake clock the test controls, reads the log
again, and keeps its place in the queue's capacity; drain() waits for it, stop() ends it.

The fake clock's sleeps end only when the test opens its gate, so each test knows what
happened during a backoff without timing anything (``GUARD`` only turns a hang into a
failure, as the old code, sleeping in its one worker, would hang)."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field

from fake_kube import FakeKube

from kascade.controller.log_archiving import ArchiveJob, LogArchiver, Outcome, RetryPolicy
from kascade.integrations.log_archive import LogArchive
from kascade.integrations.objectstore import ObjectStoreError

GUARD = 10.0
"""Seconds before a wait that should end at once is reported as a hang."""


class Clock:
    """A fake clock: each sleep is recorded and ends only once :attr:`gate` is open."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []
        self.sleepers: list[asyncio.Task[object]] = []
        self.gate = asyncio.Event()
        self.sleeping = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        task = asyncio.current_task()
        assert task is not None
        self.sleepers.append(task)
        self.sleeping.set()
        await self.gate.wait()


class KeyedStore:
    """An in-memory bucket that refuses every write of the keys in ``refuse`` (its disk
    for them is down) and takes the others; ``hold``: a write waits for ``go``."""

    def __init__(self, *refuse: str) -> None:
        self.refuse = set(refuse)
        self.objects: dict[str, bytes] = {}
        self.puts: list[str] = []
        self.prefix, self.bucket = "", "bucket"
        self.hold: threading.Event | None = None
        self.holding = threading.Event()

    def put(self, key: str, data: bytes, *, content_type: str | None = None) -> None:
        self.puts.append(key)
        if self.hold is not None:
            self.holding.set()
            self.hold.wait(GUARD)
        if key in self.refuse:
            raise ObjectStoreError(f"put s3://bucket/{key}: Connection refused")
        self.objects[key] = data


def _key(attempt: int) -> str:
    return f"logs/ns/r/t/attempt-{attempt}.log"


@dataclass
class Rig:
    kube: FakeKube
    store: KeyedStore
    clock: Clock
    archiver: LogArchiver
    outcomes: dict[int, Outcome] = field(default_factory=dict)
    settled: dict[int, asyncio.Event] = field(default_factory=dict)

    def submit(self, attempt: int) -> None:
        ref = {"kind": "TaskRun", "metadata": {"name": "r-t", "namespace": "ns", "uid": "u"}}
        job = ArchiveJob("ns", "p", "r", "t", attempt, f"r-t-a{attempt}", ref)
        self.settled.setdefault(attempt, asyncio.Event())
        self.archiver.submit(job, self._done)

    def _done(self, job: ArchiveJob, outcome: Outcome) -> None:
        self.outcomes[job.attempt] = outcome
        self.settled.setdefault(job.attempt, asyncio.Event()).set()

    async def outcome(self, attempt: int) -> Outcome:
        try:
            await asyncio.wait_for(self.settled[attempt].wait(), GUARD)
        except TimeoutError:
            raise AssertionError(f"attempt {attempt} was never settled") from None
        return self.outcomes[attempt]

    async def waiting(self) -> None:
        """Until a job sleeps off its backoff."""
        await asyncio.wait_for(self.clock.sleeping.wait(), GUARD)

    def reads(self, attempt: int) -> int:
        return self.kube.writes.count(("get", "pods/log", f"r-t-a{attempt}", "task"))


def _rig(*refuse: str, queue_size: int = 10) -> Rig:
    kube = FakeKube()
    for attempt in (1, 2, 3):
        kube.create("pods", "ns", {"metadata": {"name": f"r-t-a{attempt}"}})
        kube.logs[("ns", f"r-t-a{attempt}", "task")] = f"log {attempt}\n"
    store, clock = KeyedStore(*refuse), Clock()
    archiver = LogArchiver(
        kube,  # type: ignore[arg-type]
        LogArchive(store, max_bytes=1024),  # type: ignore[arg-type]
        emit=lambda *_: None,
        policy=RetryPolicy(tries=3, first_delay=1.0),
        sleep=clock.sleep,
        queue_size=queue_size,
        workers=1,
    )
    return Rig(kube, store, clock, archiver)


def test_a_healthy_job_is_archived_while_a_failed_one_waits_for_its_retry() -> None:
    rig = _rig(_key(1))

    async def scenario() -> None:
        rig.submit(1)  # its key's store refuses: it will wait for a retry
        rig.submit(2)
        assert await rig.outcome(2) == Outcome(True)  # the one worker was not held
        assert rig.clock.sleeps == [1.0] and 1 not in rig.outcomes  # still in its backoff
        assert rig.store.objects == {_key(2): b"log 2\n"}
        rig.clock.gate.set()
        await rig.archiver.drain()
        rig.archiver.stop()

    asyncio.run(scenario())
    assert rig.clock.sleeps == [1.0, 2.0]
    assert "Connection refused (after 3 tries)" in (rig.outcomes[1].message or "")
    assert rig.store.puts == [_key(1), _key(2), _key(1), _key(1)]


def test_a_retry_reads_the_log_again() -> None:
    rig = _rig(_key(1))

    async def scenario() -> None:
        rig.submit(1)
        await rig.waiting()
        assert rig.reads(1) == 1
        rig.store.refuse.clear()  # the store is back
        rig.kube.logs[("ns", "r-t-a1", "task")] = "log 1, read again\n"
        rig.clock.gate.set()
        await rig.archiver.drain()
        rig.archiver.stop()

    asyncio.run(scenario())
    assert rig.outcomes[1] == Outcome(True)
    assert rig.reads(1) == 2  # the waiting job kept no bytes: what is stored was read again
    assert rig.store.objects == {_key(1): b"log 1, read again\n"}


def test_a_job_waiting_for_its_retry_keeps_its_place_in_the_queue() -> None:
    rig = _rig(_key(1), queue_size=2)

    async def scenario() -> None:
        rig.submit(1)
        await rig.waiting()  # attempt 1 holds one of the two places
        rig.submit(2)
        rig.submit(3)  # no place left: a gap at once
        assert list(rig.outcomes) == [3]
        rig.clock.gate.set()
        await rig.archiver.drain()
        rig.archiver.stop()

    asyncio.run(scenario())
    assert "the archive queue is full (2 logs waiting)" in (rig.outcomes[3].message or "")
    assert rig.outcomes[2] == Outcome(True)
    assert "(after 3 tries)" in (rig.outcomes[1].message or "")


def test_a_retry_without_a_place_in_the_queue_is_a_reported_gap() -> None:
    rig = _rig(_key(1), queue_size=1)
    rig.store.hold = threading.Event()

    async def scenario() -> None:
        rig.submit(1)
        await asyncio.to_thread(rig.store.holding.wait, GUARD)  # attempt 1 is being tried
        rig.submit(2)  # takes the only place
        assert rig.store.hold is not None
        rig.store.hold.set()
        assert not (await rig.outcome(1)).archived
        rig.clock.gate.set()
        await rig.archiver.drain()
        rig.archiver.stop()

    asyncio.run(scenario())
    why = rig.outcomes[1].message or ""
    assert why.endswith("(after 1 tries; no retry: the archive queue is full (1 logs waiting))")
    assert "Connection refused" in why
    assert rig.clock.sleeps == [] and rig.outcomes[2] == Outcome(True)


def test_drain_waits_for_a_job_waiting_for_its_retry() -> None:
    rig = _rig(_key(1))

    async def scenario() -> None:
        rig.submit(1)
        rig.submit(2)
        drained = asyncio.create_task(rig.archiver.drain())
        await rig.outcome(2)  # the worker has nothing left to do but attempt 1 waits
        assert not drained.done()
        rig.store.refuse.clear()
        rig.clock.gate.set()
        await asyncio.wait_for(drained, GUARD)
        assert rig.outcomes[1] == Outcome(True)  # drain returned only once it was done
        rig.archiver.stop()

    asyncio.run(scenario())


def test_stop_cancels_the_jobs_waiting_for_their_retry() -> None:
    rig = _rig(_key(1))

    async def scenario() -> None:
        rig.submit(1)
        rig.submit(2)
        await rig.outcome(2)
        (sleeper,) = rig.clock.sleepers
        assert sleeper not in rig.archiver.tasks  # attempt 1 waits off the workers
        rig.archiver.stop()
        await asyncio.wait_for(rig.archiver.drain(), GUARD)  # nothing is left to wait for
        await asyncio.wait({sleeper}, timeout=GUARD)
        assert sleeper.cancelled()
        rig.clock.gate.set()
        await asyncio.sleep(0)

    asyncio.run(scenario())
    assert rig.store.puts == [_key(1), _key(2)]  # never tried again
    assert list(rig.outcomes) == [2]
