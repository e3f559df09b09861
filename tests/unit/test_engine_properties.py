"""Property tests: random layered DAGs with random rules, retries, sensors, pools and outcomes.

Every run is driven on a virtual clock, and every Decisions the engine returns is
checked as it comes: launches against Airflow's trigger rules for the upstream
states at that moment, concurrency against maxActiveTasks and pool sizes, retry
gaps against retryDelay/backoff/maxRetryDelay. At the end each task instance must
be in exactly one terminal state and the run finished.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from helpers_engine import FAIL, NOT_MET, OK, T0, airflow, engine, plan, scripted, task
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kascade.api.pipeline import TriggerRule
from kascade.api.runs import RunPhase, TaskState
from kascade.engine.decisions import Launch, Result
from kascade.engine.pools import PoolLedger
from kascade.engine.run import RunEngine
from kascade.engine.simulate import simulate
from kascade.engine.trigger_rules import Verdict

TERMINAL = {TaskState.SUCCESS, TaskState.FAILED, TaskState.SKIPPED, TaskState.UPSTREAM_FAILED}
POOLS = {"p1": 1, "p2": 3}
RULES = list(TriggerRule)
DELAYS = ["1s", "10s", "1m", "5m"]
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@dataclass
class Case:
    tasks: list[dict[str, Any]]
    script: dict[str, list[Result]]
    durations: dict[str, timedelta]
    max_active: int
    upstream: dict[str, list[str]] = field(default_factory=dict)


@st.composite
def cases(draw: st.DrawFn, max_tasks: int = 40) -> Case:
    layers = draw(st.integers(1, 6))
    names: list[list[str]] = []
    tasks: list[dict[str, Any]] = []
    script: dict[str, list[Result]] = {}
    durations: dict[str, timedelta] = {}
    upstream: dict[str, list[str]] = {}
    count = 0
    for layer in range(layers):
        width = draw(st.integers(1, 8))
        row = []
        for _ in range(width):
            if count >= max_tasks:
                break
            name = f"t{count}"
            count += 1
            row.append(name)
            earlier = [n for r in names for n in r]
            deps = (
                draw(st.lists(st.sampled_from(earlier), min_size=1, max_size=3, unique=True))
                if layer and earlier
                else []
            )
            upstream[name] = deps
            fields: dict[str, Any] = {
                "triggerRule": draw(st.sampled_from(RULES)).value,
                "retries": draw(st.integers(0, 3)),
            }
            delay = draw(st.sampled_from(DELAYS))
            fields["retryDelay"] = delay
            if draw(st.booleans()):
                fields["retryExponentialBackoff"] = True
            if draw(st.booleans()):
                # Also without backoff, where Airflow ignores it (checked by the gaps).
                fields["maxRetryDelay"] = draw(st.sampled_from(["5s", "30s", "2m"]))
            kind = draw(st.sampled_from(["plain"] * 6 + ["sensor", "pool", "when", "mapped"]))
            results = [OK, FAIL]
            if kind == "sensor":
                fields["sensor"] = {
                    "mode": "reschedule",
                    "pokeInterval": "30s",
                    "timeout": "3m",
                    "softFail": draw(st.booleans()),
                }
                results = [OK, FAIL, NOT_MET]
            elif kind == "pool":
                pool = draw(st.sampled_from(sorted(POOLS)))
                fields["pool"] = pool
                fields["poolSlots"] = draw(st.integers(1, POOLS[pool]))
            elif kind == "when":
                fields["when"] = draw(st.sampled_from(["true", "false"]))
            elif kind == "mapped":
                fields["expand"] = {"items": list(range(draw(st.integers(0, 3))))}
                if draw(st.booleans()):
                    fields["expand"]["maxParallel"] = 1
            if kind != "pool" and draw(st.integers(0, 4)) == 0:
                fields["pool"] = "p1"
            tasks.append(task(name, *deps, **fields))
            script[name] = draw(st.lists(st.sampled_from(results), min_size=1, max_size=5))
            durations[name] = timedelta(seconds=draw(st.integers(1, 120)))
        if row:
            names.append(row)
    # A few branch / short-circuit tasks among those with downstream tasks.
    downstream: dict[str, list[str]] = {t["name"]: [] for t in tasks}
    for name, deps in upstream.items():
        for d in deps:
            downstream[d].append(name)
    for t in tasks:
        name = t["name"]
        if not downstream[name] or "expand" in t or "sensor" in t:
            continue
        special = draw(st.sampled_from(["none"] * 6 + ["branch", "short"]))
        if special == "branch":
            t["branch"] = True
            choice = draw(
                st.lists(st.sampled_from(downstream[name]), min_size=1, max_size=2, unique=True)
            )
            script[name] = [
                Result(0, outputs={"branch": choice}) if r.ok else r for r in script[name]
            ]
        elif special == "short":
            t["shortCircuit"] = True
            cond = draw(st.booleans())
            script[name] = [
                Result(0, outputs={"condition": cond}) if r.ok else r for r in script[name]
            ]
    return Case(tasks, script, durations, draw(st.integers(1, 6)), upstream)


@dataclass
class Checked:
    engine: RunEngine
    launches: list[tuple[Any, str, int]]
    phase: RunPhase | None
    problems: list[str]


def drive(case: Case) -> Checked:
    """Run the case, checking every Decisions as it comes."""
    p = plan(case.tasks)
    pools = PoolLedger(POOLS)
    eng = engine(p, pools=pools, max_active_tasks=case.max_active)
    outcome = scripted(case.script)
    problems: list[str] = []
    states: dict[str, TaskState] = {}
    ready_seen: set[str] = set()
    retry_at: dict[str, Any] = {}
    in_flight: dict[str, Launch] = {}
    launches: list[tuple[Any, str, int]] = []
    running: list[tuple[Any, int, Launch]] = []
    seq = 0
    now = T0

    def instances_of(task_id: str) -> list[str]:
        keys = eng.by_task[p.index[task_id]]
        return keys or [task_id]

    def verdict_for(task_id: str) -> Verdict:
        c = dict.fromkeys("skfur", 0)
        for up in p.task(task_id).upstream:
            for key in instances_of(up):
                st_ = states.get(key, TaskState.NONE)
                c[
                    {
                        TaskState.SUCCESS: "s",
                        TaskState.SKIPPED: "k",
                        TaskState.FAILED: "f",
                        TaskState.UPSTREAM_FAILED: "u",
                    }.get(st_, "r")
                ] += 1
        if not p.task(task_id).upstream:
            return Verdict.RUN
        return airflow(p.task(task_id).trigger_rule, c["s"], c["k"], c["f"], c["u"], c["r"])

    terminal_batch: dict[str, int] = {}
    batch = [0]

    def check(d: Any) -> None:
        batch[0] += 1
        for key, state in d.changes:
            if state in TERMINAL:
                terminal_batch.setdefault(key, batch[0])
            inst = eng.instances.get(key)
            prev = states.get(key, TaskState.NONE)
            if inst is None:  # a mapped task settled unexpanded, decided again: gone
                if not (prev in TERMINAL and state is TaskState.NONE):
                    problems.append(f"{key}: dropped while {prev.value}")
                states[key] = state
                continue
            task_id = p.tasks[inst.task].id
            overridden = prev is TaskState.UPSTREAM_FAILED and (
                state is TaskState.SKIPPED
                and (inst.message or "").startswith(("not chosen by branch", "short-circuited"))
            )
            decided_again = state is TaskState.NONE  # an upstream's final state changed
            if prev in TERMINAL and not (overridden or decided_again):
                problems.append(f"{key}: {state.value} after terminal {prev.value}")
            if state is TaskState.UPSTREAM_FAILED:
                v = verdict_for(task_id)
                if v is not Verdict.UPSTREAM_FAILED:
                    problems.append(f"{key}: upstream_failed but Airflow says {v.value}")
            if state is TaskState.SKIPPED and (inst.message or "").startswith("trigger rule"):
                v = verdict_for(task_id)
                if v is not Verdict.SKIP:
                    problems.append(f"{key}: skipped by its rule but Airflow says {v.value}")
            if (
                state in (TaskState.SCHEDULED, TaskState.RUNNING)
                and prev is TaskState.NONE
                and key not in ready_seen
            ):
                ready_seen.add(key)
                v = verdict_for(task_id)
                if v is not Verdict.RUN:
                    problems.append(f"{key}: ready while Airflow says {v.value}")
            if state is TaskState.UP_FOR_RETRY:
                retry_at[key] = (now, inst.attempt)
            if state is TaskState.SCHEDULED and key in retry_at:
                failed_at, attempt = retry_at.pop(key)
                t = p.tasks[inst.task]
                gap = now - failed_at
                expected = t.retry_delay
                if t.retry_exponential_backoff:
                    expected = t.retry_delay * 2 ** (attempt - 1)
                    cap = t.max_retry_delay or timedelta(days=1)
                    expected = min(expected, cap)
                if gap != expected:
                    problems.append(f"{key}: retry after {gap}, expected {expected}")
                if (
                    t.retry_exponential_backoff
                    and t.max_retry_delay is not None
                    and gap > t.max_retry_delay
                ):
                    problems.append(f"{key}: retry gap {gap} above maxRetryDelay")
            states[key] = state
        for key, _reason in d.kills:
            in_flight.pop(key, None)
        for launch in d.launches:
            t = p.tasks[p.index[launch.task_id]]
            if launch.attempt > t.retries + 1:
                problems.append(f"{launch.key}: attempt {launch.attempt} > retries+1")
            if launch.key in in_flight:
                problems.append(f"{launch.key}: launched twice at once")
            in_flight[launch.key] = launch
            if t.spec.expand is not None and t.spec.expand.max_parallel is not None:
                same = sum(1 for x in in_flight.values() if x.task_id == launch.task_id)
                if same > t.spec.expand.max_parallel:
                    problems.append(f"{launch.task_id}: {same} mapped instances at once")
        if len(in_flight) > case.max_active:
            problems.append(f"{len(in_flight)} attempts in flight > {case.max_active}")
        for pool, size in POOLS.items():
            used = sum(x.pool_slots for x in in_flight.values() if x.pool == pool)
            if used > size:
                problems.append(f"pool {pool}: {used} slots used > {size}")

    d = eng.start(now)
    phase = None
    for _ in range(100_000):
        check(d)
        for launch in d.launches:
            launches.append((now, launch.key, launch.attempt))
            eng.started(launch.key, launch.attempt, now)
            running.append((now + case.durations[launch.task_id], seq, launch))
            seq += 1
        if d.finished is not None:
            phase = d.finished
            break
        running.sort(key=lambda r: (r[0], r[1]))
        candidates = [t for t in (d.wake_at, running[0][0] if running else None) if t]
        if not candidates:
            problems.append("stuck: nothing running and nothing to wait for")
            break
        now = max(now, min(candidates))
        if running and running[0][0] <= now:
            _, _, launch = running.pop(0)
            live = in_flight.get(launch.key)
            if live is not None and live.attempt == launch.attempt and live.poke == launch.poke:
                del in_flight[launch.key]
            d = eng.finished(launch.key, launch.attempt, outcome(launch), now)
        else:
            d = eng.tick(now)
    problems.extend(_skip_problems(eng, terminal_batch))
    return Checked(eng, launches, phase, problems)


def _skip_problems(eng: RunEngine, terminal_batch: dict[str, int]) -> list[str]:
    """Branch and short-circuit skips, checked after the run from the change log."""
    p = eng.plan
    problems = []
    for t in p.tasks:
        (key,) = eng.by_task[t.index] if t.spec.branch or t.spec.short_circuit else ("",)
        if not key or eng.instances[key].state is not TaskState.SUCCESS:
            continue
        outputs = eng.instances[key].outputs
        if t.spec.short_circuit:
            if outputs.get("condition"):
                continue
            must_skip = p.graph.descendants(t.index)
        else:
            chosen = {p.index[n] for n in outputs["branch"]}
            keep = set(chosen)
            for c in chosen:
                keep |= p.graph.descendants(c)
            must_skip = set(p.graph.downstream[t.index]) - keep
        for d in must_skip:
            for k in eng.by_task[d]:
                inst = eng.instances[k]
                # A skip wins over every state but success and failed (a task that ran).
                ran_before = terminal_batch.get(k, 0) < terminal_batch[key] and inst.state in (
                    TaskState.SUCCESS,
                    TaskState.FAILED,
                )
                if inst.state is not TaskState.SKIPPED and not ran_before:
                    problems.append(f"{k}: {inst.state.value}, but {key} skips it")
    return problems


@SETTINGS
@given(cases())
def test_random_dags_respect_every_invariant(case: Case) -> None:
    result = drive(case)
    assert not result.problems, result.problems[:5]
    eng = result.engine
    assert result.phase is not None, "the run never finished"
    assert eng.done
    final = eng.states()
    not_terminal = {k: s.value for k, s in final.items() if s not in TERMINAL}
    assert not not_terminal
    # every task has at least one instance, and mapped ones exactly their items
    p = eng.plan
    for t in p.tasks:
        keys = eng.by_task[t.index]
        items = t.spec.expand.items if t.spec.expand is not None else None
        if items:
            expanded = [k for k in keys if k != t.id]
            assert expanded == [] or len(expanded) == len(items)
        assert keys
    # Airflow decides the run by its leaves
    leaves_failed = any(
        final[k] in (TaskState.FAILED, TaskState.UPSTREAM_FAILED)
        for t in p.tasks
        if not p.graph.downstream[t.index]
        for k in eng.by_task[t.index]
    )
    assert result.phase is (RunPhase.FAILED if leaves_failed else RunPhase.SUCCESS)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases(max_tasks=25))
def test_same_inputs_same_launch_sequence(case: Case) -> None:
    first, second = drive(case), drive(case)
    assert first.launches == second.launches
    assert first.engine.states() == second.engine.states()
    assert first.phase is second.phase


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases(max_tasks=25))
def test_simulate_reaches_the_same_end(case: Case) -> None:
    """The stock simulate driver (fixed durations) also always finishes every task."""
    p = plan(case.tasks)
    eng = engine(p, pools=PoolLedger(POOLS), max_active_tasks=case.max_active)
    trace = simulate(eng, scripted(case.script), start=T0, duration=timedelta(seconds=7))
    assert trace.phase is not None
    assert all(s in TERMINAL for s in eng.states().values())
    for launch in trace.launches:
        assert launch.attempt <= p.task(launch.task_id).retries + 1


MARKS = [TaskState.SUCCESS, TaskState.FAILED, TaskState.SKIPPED]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cases(max_tasks=20),
    st.lists(st.tuples(st.integers(0, 60), st.integers(0, 1000), st.sampled_from(MARKS))),
)
def test_marks_at_random_moments_keep_the_books_straight(
    case: Case, marks: list[tuple[int, int, TaskState]]
) -> None:
    """``kascade mark`` at any moment, on any instance (finished or not): the run still
    ends, every instance is terminal, and each task's upstream counts match its
    upstream instances' states."""
    p = plan(case.tasks)
    eng = engine(p, pools=PoolLedger(POOLS), max_active_tasks=case.max_active)
    outcome = scripted(case.script)
    now = T0
    running: list[tuple[Any, int, Launch]] = []
    seq = 0
    d = eng.start(now)
    pending = sorted(marks, key=lambda m: m[0])
    for step in range(20_000):
        for launch in d.launches:
            eng.started(launch.key, launch.attempt, now)
            running.append((now + case.durations[launch.task_id], seq, launch))
            seq += 1
        if d.finished is not None:
            break
        if pending and pending[0][0] <= step:
            _, pick, state = pending.pop(0)
            keys = sorted(eng.instances)
            d = eng.mark(keys[pick % len(keys)], state, now)
            continue
        running.sort(key=lambda r: (r[0], r[1]))
        candidates = [t for t in (d.wake_at, running[0][0] if running else None) if t]
        assert candidates, "stuck"
        now = max(now, min(candidates))
        if running and running[0][0] <= now:
            _, _, launch = running.pop(0)
            d = eng.finished(launch.key, launch.attempt, outcome(launch), now)
        else:
            d = eng.tick(now)
    assert d.finished is not None
    assert eng.done
    assert all(s in TERMINAL for s in eng.states().values())
    for t in p.tasks:
        want = {"success": 0, "skipped": 0, "failed": 0, "upstream_failed": 0}
        total = 0
        for up in p.graph.upstream[t.index]:
            for key in eng.by_task[up]:
                total += 1
                want[eng.instances[key].state.value] += 1
        c = eng.counts[t.index]
        got = {
            "success": c.success,
            "skipped": c.skipped,
            "failed": c.failed,
            "upstream_failed": c.upstream_failed,
        }
        assert (c.total, got) == (total, want), t.id


@settings(max_examples=150, deadline=None)
@given(
    st.integers(1, 3600),
    st.one_of(st.none(), st.integers(1, 86_400 * 2)),
    st.booleans(),
    st.integers(1, 80),
)
def test_retry_delay_sequence(delay_s: int, cap_s: int | None, exponential: bool, n: int) -> None:
    """Airflow: retry_delay, doubled per failed try with exponential backoff and then
    never above max_retry_delay (or Airflow's own one-day ceiling). Without backoff the
    delay is retry_delay as written: Airflow applies max_retry_delay only to the backoff."""
    from kascade.engine.retries import retry_delay

    delay = timedelta(seconds=delay_s)
    cap = timedelta(seconds=cap_s) if cap_s is not None else None
    seq = [
        retry_delay(k, delay=delay, exponential=exponential, max_delay=cap) for k in range(1, n + 1)
    ]
    assert seq == sorted(seq)
    if exponential:
        limit = cap if cap is not None else timedelta(days=1)
        for k, d in enumerate(seq, start=1):
            assert d == timedelta(seconds=min(delay_s * 2 ** (k - 1), limit.total_seconds()))
    else:
        assert set(seq) == {delay}
