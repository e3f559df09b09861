"""Trigger rules against Airflow's semantics, directly through ``decide`` and end to end.

The reference below is a transcription of Airflow's
``TriggerRuleDep._evaluate_direct_relatives`` (airflow/ti_deps/deps/trigger_rule_dep.py):
first the "settle early" branch (``flag_upstream_failed``), then the "wait" checks.
Where the short documentation is ambiguous (does ``one_done`` count an
``upstream_failed`` parent as done-with-a-result?) the code decides: it does not;
``one_done`` needs ``success + failed > 0``.
"""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import pytest
from helpers_engine import FAIL, Recorder, airflow, engine, plan, scripted, task

from kascade.api.pipeline import TriggerRule
from kascade.api.runs import RunPhase, TaskState
from kascade.engine.trigger_rules import Counts, Verdict, decide

R = TriggerRule
RUN, WAIT, SKIP, UF = Verdict.RUN, Verdict.WAIT, Verdict.SKIP, Verdict.UPSTREAM_FAILED


def counts(s: int = 0, k: int = 0, f: int = 0, u: int = 0, r: int = 0) -> Counts:
    return Counts(total=s + k + f + u + r, success=s, skipped=k, failed=f, upstream_failed=u)


# -- the documented table, row by row ----------------------------------------------------
# (rule, success, skipped, failed, upstream_failed, running, expected)
TABLE: list[tuple[TriggerRule, int, int, int, int, int, Verdict]] = [
    # all_success
    (R.ALL_SUCCESS, 3, 0, 0, 0, 0, RUN),
    (R.ALL_SUCCESS, 2, 0, 0, 0, 1, WAIT),
    (R.ALL_SUCCESS, 1, 0, 1, 0, 1, UF),  # a failure settles it before the rest are done
    (R.ALL_SUCCESS, 1, 0, 0, 1, 0, UF),
    (R.ALL_SUCCESS, 1, 1, 0, 0, 1, SKIP),
    (R.ALL_SUCCESS, 0, 1, 1, 0, 0, UF),  # failure wins over skip
    # all_failed
    (R.ALL_FAILED, 0, 0, 2, 1, 0, RUN),
    (R.ALL_FAILED, 0, 0, 1, 0, 1, WAIT),
    (R.ALL_FAILED, 1, 0, 1, 0, 1, SKIP),
    (R.ALL_FAILED, 0, 1, 1, 0, 0, SKIP),
    (R.ALL_FAILED, 0, 0, 0, 2, 0, RUN),
    # all_done
    (R.ALL_DONE, 1, 1, 1, 1, 0, RUN),
    (R.ALL_DONE, 0, 0, 0, 0, 2, WAIT),
    (R.ALL_DONE, 1, 1, 1, 1, 1, WAIT),
    (R.ALL_DONE, 0, 3, 0, 0, 0, RUN),
    # all_skipped
    (R.ALL_SKIPPED, 0, 3, 0, 0, 0, RUN),
    (R.ALL_SKIPPED, 0, 2, 0, 0, 1, WAIT),
    (R.ALL_SKIPPED, 1, 2, 0, 0, 0, SKIP),
    (R.ALL_SKIPPED, 0, 1, 0, 1, 1, SKIP),
    (R.ALL_SKIPPED, 0, 1, 1, 0, 0, SKIP),
    # one_success
    (R.ONE_SUCCESS, 1, 0, 0, 0, 3, RUN),  # does not wait for the rest
    (R.ONE_SUCCESS, 1, 1, 1, 1, 0, RUN),
    (R.ONE_SUCCESS, 0, 1, 1, 0, 1, WAIT),
    (R.ONE_SUCCESS, 0, 1, 1, 0, 0, UF),
    (R.ONE_SUCCESS, 0, 0, 0, 2, 0, UF),
    (R.ONE_SUCCESS, 0, 3, 0, 0, 0, SKIP),
    # one_failed
    (R.ONE_FAILED, 0, 0, 1, 0, 3, RUN),
    (R.ONE_FAILED, 0, 0, 0, 1, 3, RUN),  # upstream_failed counts as a failure
    (R.ONE_FAILED, 2, 1, 0, 0, 1, WAIT),
    (R.ONE_FAILED, 2, 1, 0, 0, 0, SKIP),
    # one_done
    (R.ONE_DONE, 1, 0, 0, 0, 2, RUN),
    (R.ONE_DONE, 0, 0, 1, 0, 2, RUN),
    (R.ONE_DONE, 0, 2, 0, 0, 1, WAIT),
    (R.ONE_DONE, 0, 2, 0, 0, 0, SKIP),
    (R.ONE_DONE, 0, 0, 0, 1, 1, WAIT),  # Airflow: success + failed only, not upstream_failed
    (R.ONE_DONE, 0, 1, 0, 2, 0, SKIP),
    # none_failed
    (R.NONE_FAILED, 2, 1, 0, 0, 0, RUN),
    (R.NONE_FAILED, 0, 3, 0, 0, 0, RUN),
    (R.NONE_FAILED, 1, 1, 0, 0, 1, WAIT),
    (R.NONE_FAILED, 1, 1, 1, 0, 1, UF),
    (R.NONE_FAILED, 1, 0, 0, 1, 0, UF),
    # none_failed_min_one_success
    (R.NONE_FAILED_MIN_ONE_SUCCESS, 1, 2, 0, 0, 0, RUN),
    (R.NONE_FAILED_MIN_ONE_SUCCESS, 0, 3, 0, 0, 0, SKIP),
    (R.NONE_FAILED_MIN_ONE_SUCCESS, 0, 2, 0, 0, 1, WAIT),
    (R.NONE_FAILED_MIN_ONE_SUCCESS, 1, 1, 0, 1, 1, UF),
    (R.NONE_FAILED_MIN_ONE_SUCCESS, 0, 0, 1, 0, 0, UF),
    # none_skipped
    (R.NONE_SKIPPED, 1, 0, 1, 1, 0, RUN),
    (R.NONE_SKIPPED, 1, 0, 1, 0, 1, WAIT),
    (R.NONE_SKIPPED, 1, 1, 0, 0, 1, SKIP),
    (R.NONE_SKIPPED, 0, 0, 0, 2, 0, RUN),
    # always
    (R.ALWAYS, 0, 0, 0, 0, 3, RUN),
    (R.ALWAYS, 0, 1, 1, 1, 0, RUN),
]


@pytest.mark.parametrize(("rule", "s", "k", "f", "u", "r", "expected"), TABLE)
def test_documented_table(
    rule: TriggerRule, s: int, k: int, f: int, u: int, r: int, expected: Verdict
) -> None:
    assert airflow(rule, s, k, f, u, r) is expected, "the reference itself disagrees"
    assert decide(rule, counts(s, k, f, u, r)) is expected


def test_table_covers_every_rule() -> None:
    assert {row[0] for row in TABLE} == set(TriggerRule)


def _all_combinations(limit: int = 4) -> list[tuple[int, int, int, int, int]]:
    return [
        combo for combo in itertools.product(range(limit + 1), repeat=5) if 1 <= sum(combo) <= limit
    ]


@pytest.mark.parametrize("rule", list(TriggerRule))
def test_decide_matches_airflow_for_every_combination(rule: TriggerRule) -> None:
    wrong = []
    for s, k, f, u, r in _all_combinations():
        got = decide(rule, counts(s, k, f, u, r))
        want = airflow(rule, s, k, f, u, r)
        if got is not want:
            wrong.append(f"s={s} k={k} f={f} u={u} running={r}: {got.value} != {want.value}")
    assert not wrong, f"{rule.value}: " + "; ".join(wrong[:10])


# -- end to end: upstream tasks that really end in each state ------------------------------
# Upstream kinds: S succeeds (3s), K is skipped by `when` (at start), F fails (2s),
# U is upstream_failed (its parent fails at 1s), R is still running (1h, then succeeds).
DURATIONS = {"s": timedelta(seconds=3), "f": timedelta(seconds=2), "r": timedelta(hours=1)}
STATE_OF = {
    TaskState.SUCCESS: "s",
    TaskState.SKIPPED: "k",
    TaskState.FAILED: "f",
    TaskState.UPSTREAM_FAILED: "u",
}


def _e2e_dag(rule: TriggerRule, combo: tuple[int, int, int, int, int]) -> tuple[Any, list[str]]:
    s, k, f, u, r = combo
    tasks: list[dict[str, Any]] = []
    ups: list[str] = []
    for i in range(s):
        tasks.append(task(f"s{i}"))
        ups.append(f"s{i}")
    for i in range(k):
        tasks.append(task(f"k{i}", when="false"))
        ups.append(f"k{i}")
    for i in range(f):
        tasks.append(task(f"f{i}"))
        ups.append(f"f{i}")
    for i in range(u):
        tasks.append(task(f"x{i}"))
        tasks.append(task(f"u{i}", f"x{i}"))
        ups.append(f"u{i}")
    for i in range(r):
        tasks.append(task(f"r{i}"))
        ups.append(f"r{i}")
    tasks.append(task("target", *ups, triggerRule=rule.value))
    return plan(tasks), ups


def _e2e_run(
    rule: TriggerRule, combo: tuple[int, int, int, int, int]
) -> tuple[Recorder, list[str]]:
    p, ups = _e2e_dag(rule, combo)
    script = {f"f{i}": FAIL for i in range(combo[2])} | {f"x{i}": FAIL for i in range(combo[3])}
    durations = {
        **{f"s{i}": DURATIONS["s"] for i in range(combo[0])},
        **{f"f{i}": DURATIONS["f"] for i in range(combo[2])},
        **{f"r{i}": DURATIONS["r"] for i in range(combo[4])},
    }
    rec = Recorder(engine(p), scripted(script), durations=durations).run()
    return rec, ups


E2E_COMBOS = [c for c in _all_combinations(3) if c[0] + c[1] + c[2] + c[3] >= 1 or c[4]]


@pytest.mark.parametrize("rule", list(TriggerRule))
def test_end_to_end_every_rule_over_upstream_combinations(rule: TriggerRule) -> None:
    problems = []
    for combo in E2E_COMBOS:
        rec, ups = _e2e_run(rule, combo)
        assert rec.phase is not None, (rule, combo, "the run did not finish")
        # Replay the upstream transitions in the order the engine made them and ask the
        # reference after each one: the first non-WAIT verdict is what the target must do.
        tally = dict.fromkeys("skfu", 0)
        expected: Verdict = WAIT
        verdict_at = None
        upstream_set = set(ups)
        if rule is R.ALWAYS:
            expected, verdict_at = RUN, rec.decisions[0][0]
        for at, d in rec.decisions:
            if expected is not WAIT:
                break
            for key, state in d.changes:
                if key in upstream_set and state in STATE_OF:
                    tally[STATE_OF[state]] += 1
                    running = len(ups) - sum(tally.values())
                    v = airflow(rule, tally["s"], tally["k"], tally["f"], tally["u"], running)
                    if v is not WAIT:
                        expected, verdict_at = v, at
                        break
        final = rec.states["target"]
        want_final = {
            RUN: TaskState.SUCCESS,
            SKIP: TaskState.SKIPPED,
            UF: TaskState.UPSTREAM_FAILED,
            WAIT: None,
        }[expected]
        if final is not want_final:
            problems.append(f"{combo}: target {final.value}, Airflow: {expected.value}")
            continue
        first_change = next(
            at
            for at, d in rec.decisions
            for key, state in d.changes
            if key == "target" and state is not TaskState.NONE
        )
        if first_change != verdict_at:
            problems.append(f"{combo}: decided at {first_change}, Airflow at {verdict_at}")
        want_phase = (
            RunPhase.FAILED
            if final in (TaskState.FAILED, TaskState.UPSTREAM_FAILED)
            else RunPhase.SUCCESS
        )
        if rec.phase is not want_phase:
            problems.append(f"{combo}: run {rec.phase}, Airflow {want_phase}")
    assert not problems, f"{rule.value}: " + "; ".join(problems[:8])


def test_always_runs_before_its_upstream_finishes() -> None:
    p = plan([task("slow"), task("cleanup", "slow", triggerRule="always")])
    rec = Recorder(engine(p), scripted({}), durations={"slow": timedelta(hours=2)}).run()
    started = {launch.key: at for at, launch in rec.launches}
    assert started["cleanup"] == started["slow"]
    assert rec.states == {"slow": TaskState.SUCCESS, "cleanup": TaskState.SUCCESS}


def test_always_runs_even_under_a_failed_upstream_and_the_run_follows_its_leaf() -> None:
    p = plan([task("a"), task("b", "a"), task("c", "b", triggerRule="always")])
    rec = Recorder(engine(p), scripted({"a": FAIL})).run()
    assert rec.states["b"] is TaskState.UPSTREAM_FAILED
    assert rec.states["c"] is TaskState.SUCCESS
    # Airflow decides a run by its leaves: the only leaf, c, succeeded.
    assert rec.phase is RunPhase.SUCCESS


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (R.ALL_SUCCESS, TaskState.SKIPPED),
        (R.ALL_DONE, TaskState.SUCCESS),
        (R.NONE_FAILED, TaskState.SUCCESS),
        (R.NONE_FAILED_MIN_ONE_SUCCESS, TaskState.SKIPPED),
        (R.ALL_SKIPPED, TaskState.SUCCESS),
        (R.ONE_SUCCESS, TaskState.SKIPPED),
        (R.ONE_FAILED, TaskState.SKIPPED),
        (R.ONE_DONE, TaskState.SKIPPED),
        (R.NONE_SKIPPED, TaskState.SKIPPED),
    ],
)
def test_skips_cascade_through_chains_by_trigger_rule(
    rule: TriggerRule, expected: TaskState
) -> None:
    """A skipped root, then a default task, then the rule under test: all_success
    propagates the skip, and the rule judges a skipped parent."""
    p = plan([task("a", when="false"), task("b", "a"), task("c", "b", triggerRule=rule.value)])
    rec = Recorder(engine(p), scripted({})).run()
    assert rec.states["b"] is TaskState.SKIPPED
    assert rec.states["c"] is expected
    assert rec.phase is RunPhase.SUCCESS
