"""The cache rules of ``engine/caching.py``, as the engine applies them for both drivers.

A fresh entry with the task's rendered key makes the instance succeed with the entry's
outputs and no launch; a miss runs the task and hands an entry to the driver; a run or
task that refreshes does not read; expiry and pruning decide what is fresh.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from helpers_engine import FAIL, T0, Recorder, context, plan, scripted, task

from kascade.api.runs import AttemptReason, TaskState
from kascade.engine import caching
from kascade.engine.caching import CacheEntry, Refresh
from kascade.engine.decisions import Decisions, Result
from kascade.engine.plan import Plan
from kascade.engine.run import RunEngine
from kascade.engine.validation import validate_spec


class MemoryCache:
    """A driver's cache, in memory (the drivers keep theirs in a TaskCache or a file)."""

    def __init__(self, entries: Iterable[CacheEntry] = ()) -> None:
        self.entries = {e.id: e for e in entries}
        self.reads: list[tuple[str, str]] = []

    def get(self, task: str, key: str, now: datetime) -> CacheEntry | None:
        self.reads.append((task, key))
        entry = self.entries.get(caching.entry_id(task, key))
        return entry if entry is not None and entry.fresh(now) else None

    def keep(self, writes: Iterable[CacheEntry]) -> None:
        for entry in writes:
            self.entries[entry.id] = entry


def _run(
    p: Plan,
    cache: MemoryCache,
    script: dict[str, Any] | None = None,
    *,
    params: dict[str, Any] | None = None,
    refresh: Refresh = caching.NO_REFRESH,
    start: datetime = T0,
) -> Recorder:
    eng = RunEngine(p, context(params or {"region": "eu"}), cache=cache, refresh=refresh)
    return Recorder(eng, scripted(script or {}), decisions=_Keeping(cache)).run(start=start)


class _Keeping(list[tuple[datetime, Decisions]]):
    """The recorder's decisions, each one's cache writes kept at once (as drivers do)."""

    def __init__(self, cache: MemoryCache) -> None:
        super().__init__()
        self.cache = cache

    def append(self, item: tuple[datetime, Decisions]) -> None:
        super().append(item)
        self.cache.keep(item[1].cache_writes)


CACHED = task(
    "fetch",
    command=["fetch", "{{ params.region }}"],
    cache={"key": "rates-{{ params.region }}-{{ ds }}", "expiresAfter": "2h"},
)
PIPELINE = plan(
    [CACHED, task("use", "fetch", command=["echo", "{{ tasks.fetch.outputs.rate }}"])],
    params={"region": {"default": "eu"}},
)


def test_a_miss_runs_the_task_and_writes_an_entry_the_next_run_reuses() -> None:
    cache = MemoryCache()
    first = _run(PIPELINE, cache, {"fetch": Result(0, outputs={"rate": 1.1})})
    assert [launch.key for _, launch in first.launches] == ["fetch", "use"]
    (entry,) = cache.entries.values()
    assert (entry.task, entry.key, dict(entry.outputs)) == (
        "fetch",
        "rates-eu-2026-01-01",
        {"rate": 1.1},
    )
    assert entry.expires - entry.created == timedelta(hours=2)
    assert entry.run_id == "manual__1"

    second = _run(
        PIPELINE, cache, {"fetch": Result(0, outputs={"rate": 9.9})}, start=T0 + timedelta(hours=1)
    )
    assert [launch.key for _, launch in second.launches] == ["use"]  # no pod, no process
    inst = second.engine.instances["fetch"]
    assert inst.state is TaskState.SUCCESS
    assert inst.message == "cached: key 'rates-eu-2026-01-01', from run manual__1"
    (attempt,) = inst.attempts
    assert attempt.reason is AttemptReason.CACHED and attempt.number == 1
    (use,) = second.launched("use")
    assert use.spec.command == ["echo", "1.1"]  # the cached outputs, downstream
    assert all(not d.cache_writes for _, d in second.decisions)  # a hit writes nothing


def test_a_different_key_or_an_expired_entry_is_a_miss() -> None:
    cache = MemoryCache()
    _run(PIPELINE, cache, {"fetch": Result(0, outputs={"rate": 1.1})})
    other = _run(PIPELINE, cache, params={"region": "us"})
    assert other.launched("fetch")  # rates-us-... was never written
    late = _run(PIPELINE, cache, start=T0 + timedelta(hours=3))
    assert late.launched("fetch")  # rates-eu-... expired after 2h
    assert cache.entries[
        caching.entry_id("fetch", "rates-eu-2026-01-01")
    ].created == T0 + timedelta(hours=3, seconds=1)  # when the attempt ended


def test_refresh_runs_the_task_anyway_and_writes_a_new_entry() -> None:
    cache = MemoryCache()
    _run(PIPELINE, cache, {"fetch": Result(0, outputs={"rate": 1.1})})
    for refresh in (Refresh(everything=True), Refresh(tasks=frozenset({"fetch"}))):
        rec = _run(PIPELINE, cache, {"fetch": Result(0, outputs={"rate": 2.2})}, refresh=refresh)
        assert rec.launched("fetch")
    (entry,) = cache.entries.values()
    assert dict(entry.outputs) == {"rate": 2.2}


def test_failures_are_never_cached_and_keys_are_scoped_to_the_task() -> None:
    cache = MemoryCache()
    twin = task("twin", command=["true"], cache={"key": "rates-{{ params.region }}-{{ ds }}"})
    p = plan([CACHED, twin], params={"region": {"default": "eu"}})
    _run(p, cache, {"fetch": FAIL, "twin": Result(0, outputs={"rate": 3})})
    assert [e.task for e in cache.entries.values()] == ["twin"]  # same key, other task
    again = _run(p, cache, {"fetch": Result(0, outputs={"rate": 1})})
    assert again.launched("fetch") and not again.launched("twin")


def test_mapped_instances_share_their_tasks_cache_in_one_run() -> None:
    mapped = task(
        "score",
        command=["score", "{{ item }}"],
        expand={"items": ["eu", "us", "eu"], "maxParallel": 1},
        cache={"key": "{{ item }}"},
    )
    cache = MemoryCache()
    rec = _run(plan([mapped]), cache, {"score": Result(0, outputs={"n": 1})})
    assert [launch.key for _, launch in rec.launches] == ["score[0]", "score[1]"]
    third = rec.engine.instances["score[2]"]
    assert third.state is TaskState.SUCCESS and third.attempts[0].reason is AttemptReason.CACHED


def test_a_key_that_does_not_render_fails_the_attempt_and_says_so() -> None:
    bad = task("fetch", cache={"key": "{{ tasks.nope.outputs.x | upper }}"}, retries=0)
    p = plan([bad])
    rec = _run(p, MemoryCache())
    inst = rec.engine.instances["fetch"]
    assert inst.state is TaskState.FAILED
    assert (inst.message or "").startswith("template: cache.key: ")


def test_without_a_cache_the_task_just_runs() -> None:
    eng = RunEngine(PIPELINE, context({"region": "eu"}))
    rec = Recorder(eng, scripted({})).run()
    assert rec.launched("fetch")
    assert any(d.cache_writes for _, d in rec.decisions)  # the driver may keep it or not


def test_pruning_keeps_fresh_entries_newest_first_up_to_the_limit() -> None:
    def entry(n: int, *, expires: timedelta = timedelta(days=1)) -> CacheEntry:
        created = T0 + timedelta(seconds=n)
        return CacheEntry("t", f"k{n}", {}, created, created + expires, "r")

    entries = [entry(n) for n in range(caching.MAX_ENTRIES + 10)]
    entries.append(entry(-5, expires=timedelta(seconds=1)))  # expired by then
    kept = caching.pruned(entries, T0 + timedelta(minutes=1))
    assert len(kept) == caching.MAX_ENTRIES
    assert caching.entry_id("t", "k0") not in kept  # the oldest went first
    assert caching.entry_id("t", f"k{caching.MAX_ENTRIES + 9}") in kept
    wire = caching.entry_wire(entries[0])
    assert caching.entry_of(wire) == entries[0]
    assert caching.entry_of({"task": "t"}) is None


def test_validation_of_the_cache_field() -> None:
    from helpers_engine import spec

    _, issues = validate_spec(
        spec(
            [
                task("a", cache={"key": "{{ nope }}", "expiresAfter": "0s"}),
                {
                    "name": "w",
                    "sensor": {"kind": "time", "targetTime": "10:00"},
                    "cache": {"key": "x"},
                },
            ]
        ),
        "p",
    )
    found = {(i.path, i.message.split(" (")[0]) for i in issues}
    assert ("spec.tasks[0].cache.key", "unknown template variable 'nope'") in found
    assert ("spec.tasks[0].cache.expiresAfter", "'0s' must be more than zero") in found
    assert (
        "spec.tasks[1].cache",
        "a sensor waits for something new each run: it cannot be cached",
    ) in found
