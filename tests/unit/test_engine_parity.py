"""Engine behaviours that once differed from Airflow's, each pinned to what Airflow does.

- ``max_retry_delay`` only caps exponential backoff (``TaskInstance.next_retry_datetime``).
- A branch that chooses an id that is not in the pipeline, or a template that cannot
  render, is an ordinary task failure in Airflow (the operator raises inside the task's
  try), so retries apply.
- ``xcom_pull`` from a task that was skipped or failed returns None, so a downstream
  task that runs anyway renders; our templating renders null as the empty string.
- A short circuit skips all descendants at once, and the scheduler judges a trigger
  rule on every upstream state known at that moment.
"""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import pytest
from helpers_engine import FAIL, T0, engine, plan, run, task

from kascade.api.runs import RunPhase, TaskState
from kascade.engine.decisions import Result
from kascade.engine.plan import Plan
from kascade.engine.pools import PoolLedger
from kascade.engine.restore import Observed
from kascade.engine.retries import retry_delay

S, F, K, UF = TaskState.SUCCESS, TaskState.FAILED, TaskState.SKIPPED, TaskState.UPSTREAM_FAILED
RETRY = TaskState.UP_FOR_RETRY


def out(**outputs: Any) -> Result:
    return Result(0, outputs=outputs)


def gaps(rec: Any, key: str) -> list[timedelta]:
    """Waits between the end of one attempt (1s long) and the start of the next."""
    starts = [at for at, launch in rec.launches if launch.key == key]
    return [b - a - timedelta(seconds=1) for a, b in itertools.pairwise(starts)]


def retries_of(rec: Any, key: str) -> int:
    return sum(1 for k, state in rec.changes() if k == key and state is RETRY)


# -- 1. maxRetryDelay caps only the exponential backoff ------------------------------------------
def test_plain_retry_delay_is_not_capped_by_max_retry_delay() -> None:
    p = plan([task("a", retries=2, retryDelay="10m", maxRetryDelay="1m")])
    rec = run(p, {"a": FAIL})
    assert gaps(rec, "a") == [timedelta(minutes=10), timedelta(minutes=10)]
    assert rec.states["a"] is F


@pytest.mark.parametrize("attempt", [1, 2, 30])
def test_retry_delay_without_backoff_is_used_as_written(attempt: int) -> None:
    long = timedelta(days=3)
    assert retry_delay(attempt, delay=long, max_delay=timedelta(minutes=1)) == long
    assert retry_delay(attempt, delay=long) == long  # nor by the one-day backoff ceiling


# -- 2. a branch choice not in the pipeline, or a bad template, is a failed attempt --------------
def branch_dag(**pick: Any) -> list[dict[str, Any]]:
    return [task("pick", branch=True, **pick), task("b", "pick"), task("c", "pick")]


def join_after_branch(*command: str) -> Plan:
    """A join of both branches that still runs when one of them was skipped."""
    join = task("join", "b", "c", triggerRule="none_failed_min_one_success", command=list(command))
    return plan([*branch_dag(), join])


def test_an_invalid_branch_choice_is_retried_then_fails_with_its_message() -> None:
    p = plan(branch_dag(retries=2, retryDelay="1m"))
    rec = run(p, {"pick": out(branch="nope")})
    assert [launch.attempt for launch in rec.launched("pick")] == [1, 2, 3]
    assert retries_of(rec, "pick") == 2
    assert gaps(rec, "pick") == [timedelta(minutes=1)] * 2
    assert rec.states == {"pick": F, "b": UF, "c": UF}
    assert rec.phase is RunPhase.FAILED


def test_an_invalid_branch_choice_is_retried_and_a_good_retry_branches() -> None:
    notify = {"name": "n", "events": ["retry"], "webhook": {"url": "http://example.invalid/x"}}
    p = plan(branch_dag(retries=1, retryDelay="1m", notifications=[notify]))
    rec = run(p, {"pick": [out(branch="nope"), out(branch="c")]})
    assert [launch.attempt for launch in rec.launched("pick")] == [1, 2]
    assert rec.states == {"pick": S, "b": K, "c": S}
    assert rec.notifications() == [("retry", "pick")]
    fired = [f for _, d in rec.decisions for f in d.notifications]
    assert "'nope'" in fired[0].message  # the retry says why


def test_the_outputs_of_a_failed_branch_attempt_do_not_count() -> None:
    p = plan(
        [
            *branch_dag(),
            task(
                "report",
                "b",
                "c",
                triggerRule="all_done",
                command=["echo", "{{ tasks.pick.outputs.x }}"],
            ),
        ]
    )
    rec = run(p, {"pick": out(branch="nope", x=1)})
    assert rec.states["pick"] is F and rec.states["report"] is S
    assert rec.launched("report")[0].spec.command == ["echo", ""]
    assert rec.engine.outputs_of("pick") == {}


def test_a_template_that_cannot_render_is_retried_then_fails() -> None:
    p = plan(
        [
            task("a"),
            task(
                "b",
                "a",
                retries=2,
                retryDelay="1m",
                command=["echo", "{{ tasks.a.outputs.missing }}"],
            ),
        ]
    )
    rec = run(p, {"a": out(n=1)})
    assert rec.launched("b") == []  # nothing to run: each attempt fails before a pod
    assert retries_of(rec, "b") == 2
    inst = rec.engine.instances["b"]
    assert inst.state is F and inst.attempt == 3
    assert (inst.message or "").startswith("template: ") and "missing" in (inst.message or "")
    assert rec.end == T0 + timedelta(seconds=1) + 2 * timedelta(minutes=1)


def test_a_template_error_is_an_attempt_that_a_restore_counts() -> None:
    tasks = [
        task("a"),
        task("b", "a", retries=2, retryDelay="1m", command=["{{ tasks.a.outputs.missing }}"]),
    ]
    rec = run(plan(tasks), {"a": out(n=1)})
    attempts = rec.engine.instances["b"].attempts
    assert [(a.number, a.reason) for a in attempts] == [(n, "TemplateError") for n in (1, 2, 3)]

    # An operator restarted during the wait before the last try resumes at attempt 2.
    eng = engine(plan(tasks))
    wait_until = T0 + timedelta(minutes=1)
    eng.restore(
        {
            "a": Observed(S, attempt=1, outputs={"n": 1}),
            "b": Observed(TaskState.UP_FOR_RETRY, attempt=2, next_try_at=wait_until),
        },
        T0,
    )
    eng.tick(wait_until)
    b = eng.instances["b"]
    assert b.state is F and b.attempt == 3


def test_a_template_error_releases_its_pool_slot_for_the_retry_wait() -> None:
    pools = PoolLedger({"p": 1})
    p = plan(
        [
            task("bad", pool="p", retries=1, retryDelay="1m", command=["{{ params.nope }}"]),
            task("good", pool="p"),
        ]
    )
    rec = run(p, pools=pools)
    assert rec.states == {"bad": F, "good": S}
    assert pools.used == {"p": 0}


# -- 3. outputs of an upstream that did not succeed read as null ----------------------------------
def test_outputs_of_a_skipped_upstream_render_empty_in_a_join() -> None:
    p = join_after_branch(
        "echo",
        "b={{ tasks.b.outputs.n }} c={{ tasks.c.outputs.n }}",
        "{{ tasks.c.outputs.n | default('none') }}",
        "{{ tasks.c.outputs.n == null }}",
    )
    rec = run(p, {"pick": out(branch="b"), "b": out(n=1)})
    assert rec.states == {"pick": S, "b": S, "c": K, "join": S}
    assert rec.launched("join")[0].spec.command == ["echo", "b=1 c=", "none", "true"]


def test_outputs_of_failed_and_upstream_failed_upstreams_render_empty() -> None:
    p = plan(
        [
            task("a"),
            task("b", "a"),
            task(
                "cleanup",
                "a",
                "b",
                triggerRule="all_done",
                env=[{"name": "V", "value": "[{{ tasks.a.outputs.n }}][{{ tasks.b.outputs.n }}]"}],
            ),
        ]
    )
    rec = run(p, {"a": FAIL})
    assert rec.states == {"a": F, "b": UF, "cleanup": S}
    (launch,) = rec.launched("cleanup")
    assert [(e.name, e.value) for e in launch.spec.env or []] == [("V", "[][]")]


def test_when_reads_a_skipped_upstream_output_as_null() -> None:
    p = plan(
        [
            *branch_dag(),
            task("if-c", "b", "c", triggerRule="none_failed", when="tasks.c.outputs.n"),
            task("if-not-c", "b", "c", triggerRule="none_failed", when="not tasks.c.outputs.n"),
        ]
    )
    rec = run(p, {"pick": out(branch="b")})
    assert rec.states["if-c"] is K and rec.states["if-not-c"] is S
    assert "when is false" in (rec.engine.instances["if-c"].message or "")


def test_outputs_of_a_skipped_task_in_a_group_and_of_an_empty_mapping_read_null() -> None:
    p = plan(
        [
            task("pick", branch=True),
            task("other", "pick"),
            task("fan", expand={"items": []}),
            task(
                "join",
                "g",
                "other",
                "fan",
                triggerRule="all_done",
                command=["echo", "{{ tasks.g.x.outputs.v }}|{{ tasks.fan.outputs.v }}"],
            ),
        ],
        groups=[{"name": "g", "dependsOn": ["pick"], "tasks": [task("x")]}],
    )
    rec = run(p, {"pick": out(branch="other")})
    assert rec.states["g.x"] is K and rec.states["fan"] is K
    assert rec.launched("join")[0].spec.command == ["echo", "|"]


def test_a_missing_key_of_a_successful_upstream_is_still_an_error() -> None:
    p = plan([task("a"), task("b", "a", command=["echo", "{{ tasks.a.outputs.missing }}"])])
    rec = run(p, {"a": out(n=1)})
    inst = rec.engine.instances["b"]
    assert inst.state is F
    assert "'tasks.a.outputs.missing' is not defined" in (inst.message or "")


def test_a_skipped_upstream_writes_no_outputs_of_its_own() -> None:
    """The null reading is for templates only: the upstream's outputs stay empty."""
    p = plan(
        [
            *branch_dag(),
            task("t", "b", "c", triggerRule="all_done", command=["{{ tasks.c.outputs }}"]),
        ]
    )
    rec = run(p, {"pick": out(branch="b")})
    assert rec.launched("t")[0].spec.command == ["{}"]
    assert rec.engine.outputs_of("c") == {}
    assert rec.engine.instances["c"].outputs == {}


def test_a_restored_run_reads_a_skipped_upstream_output_as_null() -> None:
    p = join_after_branch("echo", "{{ tasks.b.outputs.n }}/{{ tasks.c.outputs.n }}")
    eng = engine(p)
    d = eng.restore(
        {
            "pick": Observed(S, attempt=1, outputs={"branch": "b"}),
            "b": Observed(S, attempt=1, outputs={"n": 1}),
            "c": Observed(K),
        },
        T0,
    )
    (launch,) = d.launches
    assert launch.key == "join" and launch.spec.command == ["echo", "1/"]


# -- the scheduler's view of upstream states -----------------------------------------------------
def test_a_short_circuit_skips_every_descendant_before_any_rule_reacts() -> None:
    """t8 waits on a failed t0 and on t7; the short circuit must skip it, not let the
    skip of t7 make it upstream_failed first (Airflow skips all descendants at once)."""
    p = plan(
        [
            task("t0"),
            task("t1", shortCircuit=True),
            task("t7", "t0", "t1", triggerRule="all_failed"),
            task("t8", "t0", "t7", triggerRule="one_success"),
        ]
    )
    rec = run(p, {"t0": FAIL, "t1": out(condition=False)}, max_active_tasks=1)
    assert rec.launch_order() == ["t0", "t1"]
    assert rec.states == {"t0": F, "t1": S, "t7": K, "t8": K}


def test_a_rule_sees_every_state_its_upstream_settled_at_once() -> None:
    """a's failure skips s (all_skipped) and fails j's all_success. j must see both the
    failure and the skip: Airflow's all_success says upstream_failed when any upstream
    failed, whatever else was skipped."""
    p = plan(
        [
            task("a"),
            task("s", "a", triggerRule="all_skipped"),
            task("j", "a", "s"),
        ]
    )
    rec = run(p, {"a": FAIL})
    assert rec.states == {"a": F, "s": K, "j": UF}
    assert rec.phase is RunPhase.FAILED
