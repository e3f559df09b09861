"""RunEngine scenarios, each checked against what Airflow does in the same situation."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import pytest
from helpers_engine import (
    FAIL,
    NOT_MET,
    OK,
    T0,
    Recorder,
    engine,
    plan,
    run,
    scripted,
    task,
)

from kascade.api.runs import RunPhase, TaskState
from kascade.engine.decisions import Result
from kascade.engine.run import RunEngine

S, F, K, UF = TaskState.SUCCESS, TaskState.FAILED, TaskState.SKIPPED, TaskState.UPSTREAM_FAILED
DAY = timedelta(days=1)


def out(**outputs: Any) -> Result:
    return Result(0, outputs=outputs)


def hook(name: str, *events: str) -> dict[str, Any]:
    return {"name": name, "events": list(events), "webhook": {"url": "http://example.invalid/x"}}


# -- branching ---------------------------------------------------------------------------
def branch_dag(**join: Any) -> list[dict[str, Any]]:
    return [
        task("pick", branch=True),
        task("b", "pick"),
        task("c", "pick"),
        task("after_c", "c"),
        task("join", "b", "after_c", **join),
    ]


def test_branch_single_choice_skips_the_other_path_and_min_one_success_join_runs() -> None:
    rec = run(
        plan(branch_dag(triggerRule="none_failed_min_one_success")), {"pick": out(branch="b")}
    )
    assert rec.states == {"pick": S, "b": S, "c": K, "after_c": K, "join": S}
    assert "c" not in rec.launch_order()
    assert rec.phase is RunPhase.SUCCESS


def test_branch_default_join_is_skipped_by_the_skip_cascade() -> None:
    rec = run(plan(branch_dag()), {"pick": out(branch="b")})
    assert rec.states["join"] is K  # all_success with a skipped parent
    assert rec.phase is RunPhase.SUCCESS


def test_branch_list_choice() -> None:
    p = plan([task("pick", branch=True), task("b", "pick"), task("c", "pick"), task("e", "pick")])
    rec = run(p, {"pick": out(branch=["b", "e"])})
    assert rec.states == {"pick": S, "b": S, "c": K, "e": S}


def test_branch_does_not_skip_a_direct_downstream_that_is_downstream_of_the_choice() -> None:
    """Airflow's skip_all_except keeps the chosen tasks' downstream, even when direct."""
    p = plan([task("pick", branch=True), task("b", "pick"), task("c", "pick", "b")])
    rec = run(p, {"pick": out(branch="b")})
    assert rec.states == {"pick": S, "b": S, "c": S}


def test_branch_choice_of_a_group_follows_its_roots() -> None:
    p = plan(
        [task("pick", branch=True), task("other", "pick")],
        groups=[
            {
                "name": "g",
                "dependsOn": ["pick"],
                "tasks": [task("x"), task("y"), task("z", "x", "y")],
            }
        ],
    )
    rec = run(p, {"pick": out(branch="g")})
    assert rec.states == {"pick": S, "other": K, "g.x": S, "g.y": S, "g.z": S}


def test_branch_inside_a_group_chooses_a_sibling_by_its_short_name() -> None:
    p = plan(
        [],
        groups=[
            {
                "name": "g",
                "tasks": [task("pick", branch=True), task("a", "pick"), task("b", "pick")],
            }
        ],
    )
    rec = run(p, {"g.pick": out(branch="a")})
    assert rec.states == {"g.pick": S, "g.a": S, "g.b": K}


def test_branch_in_a_nested_group_chooses_a_task_of_the_enclosing_group() -> None:
    """Names resolve innermost group first, then each enclosing group, as dependsOn does."""
    p = plan(
        [],
        groups=[
            {
                "name": "outer",
                "tasks": [task("x", "inner.pick"), task("y", "inner.pick")],
                "groups": [{"name": "inner", "tasks": [task("pick", branch=True)]}],
            }
        ],
    )
    rec = run(p, {"outer.inner.pick": out(branch="x")})
    assert rec.states == {"outer.inner.pick": S, "outer.x": S, "outer.y": K}


def test_branch_invalid_choice_fails_the_branch_with_a_clear_message() -> None:
    rec = run(plan(branch_dag()), {"pick": out(branch="nope")})
    inst = rec.engine.instances["pick"]
    assert inst.state is F
    assert inst.message == (
        "branch chose 'nope', which is not a task or group of this pipeline "
        "(the tasks directly downstream of pick: b, c)"
    )
    assert rec.states["b"] is UF and rec.states["c"] is UF
    assert rec.phase is RunPhase.FAILED


# -- short-circuit ------------------------------------------------------------------------
def short_circuit_dag() -> list[dict[str, Any]]:
    return [
        task("check", shortCircuit=True),
        task("side"),
        task("a", "check"),
        task("b", "a", "side", triggerRule="all_done"),
        task("c", "b", triggerRule="always"),
    ]


def test_short_circuit_false_skips_every_downstream_task_ignoring_trigger_rules() -> None:
    rec = run(
        plan(short_circuit_dag()),
        {"check": out(condition=False)},
        durations={"side": timedelta(minutes=5)},
    )
    assert rec.states["check"] is S and rec.states["side"] is S
    assert rec.states["a"] is K and rec.states["b"] is K
    assert rec.phase is RunPhase.SUCCESS
    assert "a" not in rec.launch_order() and "b" not in rec.launch_order()


@pytest.mark.parametrize("value", [True, 1, "yes"])
def test_short_circuit_truthy_lets_everything_run(value: Any) -> None:
    rec = run(plan(short_circuit_dag()), {"check": out(condition=value)})
    assert set(rec.states.values()) == {S}


@pytest.mark.parametrize("value", [False, 0, "false", "", None])
def test_short_circuit_falsy_values(value: Any) -> None:
    rec = run(plan(short_circuit_dag()), {"check": out(condition=value)})
    assert rec.states["a"] is K


# -- when ------------------------------------------------------------------------------------
def test_when_on_params() -> None:
    p = plan(
        [task("eu", when="params.region == 'eu'"), task("us", when="params.region == 'us'")],
        params={"region": {"type": "string", "default": "eu"}},
    )
    rec = run(p, params={"region": "us"})
    assert rec.states == {"eu": K, "us": S}
    assert rec.launch_order() == ["us"]


def test_when_on_upstream_outputs() -> None:
    p = plan(
        [
            task("count"),
            task("load", "count", when="tasks.count.outputs.rows > 0"),
            task("alert", "count", when="tasks.count.outputs.rows == 0"),
        ]
    )
    rec = run(p, {"count": out(rows=5)})
    assert rec.states == {"count": S, "load": S, "alert": K}


def test_when_failing_to_evaluate_fails_the_task() -> None:
    p = plan([task("a"), task("b", "a", when="tasks.a.outputs.missing > 1")])
    rec = run(p, {"a": out(other=1)})
    assert rec.states["b"] is F
    assert rec.phase is RunPhase.FAILED


# -- dynamic mapping ------------------------------------------------------------------------
def test_mapping_over_items_renders_each_item() -> None:
    p = plan(
        [task("m", command=["echo", "{{ item }}-{{ map_index }}"], expand={"items": ["a", "b"]})]
    )
    rec = run(p)
    commands = sorted(launch.spec.command or [] for _, launch in rec.launches)
    assert commands == [["echo", "a-0"], ["echo", "b-1"]]
    assert rec.states == {"m[0]": S, "m[1]": S}


def test_mapping_over_an_upstream_output_and_collecting_outputs_downstream() -> None:
    p = plan(
        [
            task("list"),
            task("m", "list", expand={"param": "tasks.list.outputs.files"}),
            task("sum", "m", command=["echo", "{{ tasks.m.outputs.n }}"]),
        ]
    )

    def outcome(launch: Any) -> Result:
        if launch.task_id == "list":
            return out(files=["x", "y", "z"])
        if launch.task_id == "m":
            return out(n=launch.map_index * 10)
        return OK

    rec = Recorder(engine(p), outcome).run()
    assert rec.states == {"list": S, "m[0]": S, "m[1]": S, "m[2]": S, "sum": S}
    (summed,) = rec.launched("sum")
    assert summed.spec.command == ["echo", "[0,10,20]"]


def test_mapping_collects_outputs_in_map_index_order_whatever_the_finish_order() -> None:
    p = plan(
        [
            task("m", expand={"items": [3, 2, 1]}),
            task("sum", "m", command=["echo", "{{ tasks.m.outputs.v }}"]),
        ]
    )
    eng = engine(p)
    d = eng.start(T0)
    keys = [launch.key for launch in d.launches]
    assert keys == ["m[0]", "m[1]", "m[2]"]
    for launch in d.launches:
        eng.started(launch.key, launch.attempt, T0)
    later = T0
    last = None
    for launch in reversed(d.launches):
        later += timedelta(seconds=1)
        last = eng.finished(launch.key, launch.attempt, out(v=launch.map_index), later)
    assert last is not None
    (summed,) = last.launches
    assert summed.spec.command == ["echo", "[0,1,2]"]


def test_mapping_over_an_empty_list_is_skipped_and_so_is_its_downstream() -> None:
    p = plan(
        [
            task("list"),
            task("m", "list", expand={"param": "tasks.list.outputs.files"}),
            task("after", "m"),
            task("anyway", "m", triggerRule="all_done"),
        ]
    )
    rec = run(p, {"list": out(files=[])})
    assert rec.states == {"list": S, "m": K, "after": K, "anyway": S}
    assert rec.phase is RunPhase.SUCCESS


def test_mapping_over_a_non_list_fails() -> None:
    p = plan([task("list"), task("m", "list", expand={"param": "tasks.list.outputs.files"})])
    rec = run(p, {"list": out(files="x")})
    assert rec.states["m"] is F


def test_mapped_downstream_counts_every_instance() -> None:
    """all_success waits for every mapped instance; one failure makes it upstream_failed."""
    p = plan([task("m", expand={"items": [1, 2, 3]}), task("after", "m")])
    rec = run(p, {"m[1]": FAIL})
    assert rec.states == {"m[0]": S, "m[1]": F, "m[2]": S, "after": UF}
    assert rec.phase is RunPhase.FAILED


def test_mapping_max_parallel() -> None:
    p = plan([task("m", expand={"items": list(range(7)), "maxParallel": 2})])
    rec = run(p)
    assert set(rec.states.values()) == {S}
    starts = [at for at, _ in rec.launches]
    for at in starts:
        assert sum(1 for s in starts if s <= at < s + timedelta(seconds=1)) <= 2
    assert len(rec.launches) == 7


def test_mapped_instances_retry_independently() -> None:
    p = plan([task("m", expand={"items": [1, 2]}, retries=1, retryDelay="10s")])
    rec = run(p, {"m[0]": [FAIL, OK]})
    assert [launch.attempt for launch in rec.launched("m[0]")] == [1, 2]
    assert [launch.attempt for launch in rec.launched("m[1]")] == [1]
    assert rec.phase is RunPhase.SUCCESS


# -- sensors ----------------------------------------------------------------------------------
def sensor_task(**sensor: Any) -> dict[str, Any]:
    base = {"mode": "reschedule", "pokeInterval": "30s", "timeout": "5m"}
    return task("wait", sensor=base | sensor)


def test_command_sensor_in_reschedule_mode_pokes_until_met() -> None:
    p = plan([sensor_task(), task("after", "wait")])
    rec = run(p, {"wait": [NOT_MET, NOT_MET, OK]})
    pokes = rec.launched("wait")
    assert len(pokes) == 3
    assert {launch.attempt for launch in pokes} == {1}  # pokes are not retries
    gaps = [b[0] - a[0] for a, b in zip(rec.launches[:2], rec.launches[1:3], strict=True)]
    assert all(gap >= timedelta(seconds=30) for gap in gaps)
    assert rec.states == {"wait": S, "after": S}
    assert TaskState.UP_FOR_RESCHEDULE in [s for k, s in rec.changes() if k == "wait"]


def test_reschedule_sensor_frees_its_slot_between_pokes() -> None:
    p = plan([sensor_task(), task("other")], maxActiveTasks=1)
    rec = run(
        p,
        {"wait": [NOT_MET, OK]},
        durations={"other": timedelta(seconds=10)},
    )
    order = rec.launch_order()
    assert order[:2] in (["wait", "other"], ["other", "wait"])
    assert rec.phase is RunPhase.SUCCESS


def test_command_sensor_timeout_fails_without_retries() -> None:
    p = plan(
        [
            task(
                "wait",
                retries=2,
                sensor={"mode": "reschedule", "pokeInterval": "1m", "timeout": "5m"},
            ),
            task("after", "wait"),
        ]
    )
    rec = run(p, {"wait": NOT_MET})
    assert rec.states == {"wait": F, "after": UF}
    assert "timed out" in (rec.engine.instances["wait"].message or "")
    pokes = rec.launched("wait")
    assert {launch.attempt for launch in pokes} == {1}
    assert rec.end is not None and rec.end - T0 <= timedelta(minutes=5, seconds=5)


def test_command_sensor_soft_fail_skips() -> None:
    p = plan([sensor_task(softFail=True), task("after", "wait")])
    rec = run(p, {"wait": NOT_MET})
    assert rec.states == {"wait": K, "after": K}
    assert rec.phase is RunPhase.SUCCESS


def test_time_sensor_is_evaluated_by_the_engine_without_a_launch() -> None:
    # The target time is on the data interval's end day (T0 + 1 day).
    p = plan(
        [
            {"name": "wait", "sensor": {"kind": "time", "targetTime": "06:30"}},
            task("after", "wait"),
        ]
    )
    eng = engine(p)
    rec = Recorder(eng, scripted({})).run(start=T0 + DAY)
    assert rec.launch_order() == ["after"]
    assert rec.states == {"wait": S, "after": S}
    ((at, _),) = rec.launches
    assert at == T0 + DAY + timedelta(hours=6, minutes=30)


def test_time_sensor_already_met_succeeds_at_once() -> None:
    p = plan(
        [{"name": "wait", "sensor": {"kind": "time", "targetTime": "06:30"}}, task("after", "wait")]
    )
    rec = Recorder(engine(p), scripted({})).run(start=T0 + DAY + timedelta(hours=7))
    assert rec.launches[0][0] == T0 + DAY + timedelta(hours=7)
    assert rec.states == {"wait": S, "after": S}


# -- run timeout, SLA -------------------------------------------------------------------------
def test_run_timeout_fails_the_run_and_skips_unfinished_tasks() -> None:
    p = plan([task("quick"), task("slow", "quick"), task("after", "slow")], runTimeout="10m")
    eng = engine(p)
    rec = Recorder(eng, scripted({}), durations={"slow": timedelta(hours=1)}).run()
    assert rec.phase is RunPhase.FAILED
    assert rec.end == T0 + timedelta(minutes=10)
    assert rec.states == {"quick": S, "slow": K, "after": K}
    kills = [k for _, d in rec.decisions for k in d.kills]
    assert ("slow", "RunTimeout") in kills


def test_task_sla_miss_fires_once() -> None:
    p = plan([task("slow", sla="1h", notifications=[hook("n", "slaMiss")]), task("after", "slow")])
    start = T0 + DAY  # the interval ends at T0 + 1 day: the SLA deadline is an hour later
    rec = Recorder(engine(p), scripted({}), durations={"slow": timedelta(hours=3)}).run(start=start)
    misses = [m for _, d in rec.decisions for m in d.sla_misses]
    assert [m.task for m in misses] == ["slow"]
    assert misses[0].deadline == start + timedelta(hours=1)
    assert rec.notifications().count(("slaMiss", "slow")) == 1
    assert rec.phase is RunPhase.SUCCESS


def test_no_sla_miss_when_the_task_is_done_in_time() -> None:
    p = plan([task("quick", sla="1h")], sla="2h")
    rec = Recorder(engine(p), scripted({})).run(start=T0 + DAY)
    assert not [m for _, d in rec.decisions for m in d.sla_misses]


def test_run_sla_miss() -> None:
    p = plan([task("slow")], sla="30m", notifications=[hook("n", "slaMiss")])
    rec = Recorder(engine(p), scripted({}), durations={"slow": timedelta(hours=1)}).run(
        start=T0 + DAY
    )
    misses = [m for _, d in rec.decisions for m in d.sla_misses]
    assert [m.task for m in misses] == [None]
    assert rec.notifications().count(("slaMiss", None)) == 1


# -- retries and notifications ---------------------------------------------------------------
def test_notifications_fire_on_retry_then_failure() -> None:
    n = hook("n", "retry", "failure", "success")
    p = plan([task("a", retries=2, retryDelay="1m", notifications=[n])])
    rec = run(p, {"a": FAIL})
    assert [e for e in rec.notifications() if e[1] == "a"] == [
        ("retry", "a"),
        ("retry", "a"),
        ("failure", "a"),
    ]
    assert len(rec.launched("a")) == 3


def test_notifications_fire_on_retry_then_success() -> None:
    n = hook("n", "retry", "failure", "success")
    p = plan([task("a", retries=2, retryDelay="1m", notifications=[n])])
    rec = run(p, {"a": [FAIL, OK]})
    assert rec.notifications() == [("retry", "a"), ("success", "a")]


def test_run_level_notifications() -> None:
    p = plan([task("a")], notifications=[hook("r", "failure", "success")])
    assert run(p, {"a": FAIL}).notifications() == [("failure", None)]
    assert run(p).notifications() == [("success", None)]


def test_retry_delays_with_exponential_backoff_capped() -> None:
    p = plan(
        [
            task(
                "a",
                retries=4,
                retryDelay="1m",
                retryExponentialBackoff=True,
                maxRetryDelay="3m",
            )
        ]
    )
    rec = run(p, {"a": FAIL})
    starts = [at for at, launch in rec.launches]
    gaps = [b - a - timedelta(seconds=1) for a, b in itertools.pairwise(starts)]
    assert gaps == [timedelta(minutes=m) for m in (1, 2, 3, 3)]
    assert [launch.attempt for launch in rec.launched("a")] == [1, 2, 3, 4, 5]


# -- templating --------------------------------------------------------------------------------
def test_outputs_templated_into_a_downstream_command() -> None:
    p = plan([task("a"), task("b", "a", command=["echo", "n={{ tasks.a.outputs.n }}", "{{ ds }}"])])
    rec = run(p, {"a": out(n=42)})
    (b,) = rec.launched("b")
    assert b.spec.command == ["echo", "n=42", "2026-01-01"]


def test_group_template_sibling_references_resolve_within_each_instance() -> None:
    p = plan(
        [],
        templates=[
            {
                "name": "etl",
                "inputs": [{"name": "region"}],
                "tasks": [
                    task("extract", command=["x", "{{ inputs.region }}"]),
                    task("load", "extract", command=["echo", "{{ tasks.extract.outputs.rows }}"]),
                ],
            }
        ],
        groups=[
            {"name": "eu", "template": {"name": "etl", "inputs": {"region": "eu"}}},
            {"name": "us", "template": {"name": "etl", "inputs": {"region": "us"}}},
        ],
    )
    rec = run(p, {"eu.extract": out(rows=1), "us.extract": out(rows=2)})
    assert rec.launched("eu.extract")[0].spec.command == ["x", "eu"]
    assert rec.launched("us.extract")[0].spec.command == ["x", "us"]
    assert rec.launched("eu.load")[0].spec.command == ["echo", "1"]
    assert rec.launched("us.load")[0].spec.command == ["echo", "2"]


def test_nested_group_task_references_a_task_of_the_enclosing_group() -> None:
    """Validation accepts ``tasks.x`` resolved like dependsOn (innermost group outwards);
    the engine must render it the same way."""
    p = plan(
        [],
        groups=[
            {
                "name": "outer",
                "tasks": [task("x")],
                "groups": [
                    {
                        "name": "inner",
                        "dependsOn": ["x"],
                        "tasks": [task("y", command=["echo", "{{ tasks.x.outputs.v }}"])],
                    }
                ],
            }
        ],
    )
    rec = run(p, {"outer.x": out(v=7)})
    assert rec.states["outer.inner.y"] is S
    assert rec.launched("outer.inner.y")[0].spec.command == ["echo", "7"]


def test_a_template_that_fails_to_render_fails_the_task() -> None:
    p = plan([task("a"), task("b", "a", command=["echo", "{{ tasks.a.outputs.missing }}"])])
    rec = run(p, {"a": out(n=1)})
    assert rec.states["b"] is F
    assert "template" in (rec.engine.instances["b"].message or "")


# -- priority ------------------------------------------------------------------------------------
def test_priority_weight_orders_queued_tasks() -> None:
    p = plan(
        [
            task("low", priorityWeight=1),
            task("high", priorityWeight=10),
            task("mid", priorityWeight=5),
        ],
        maxActiveTasks=1,
    )
    assert run(p).launch_order() == ["high", "mid", "low"]


def test_downstream_weight_rule() -> None:
    """Airflow's default weight rule: own weight plus every downstream task's weight."""
    p = plan(
        [
            task("lonely", priorityWeight=3),
            task("root"),
            task("c1", "root"),
            task("c2", "root"),
            task("c3", "c1"),
        ],
        maxActiveTasks=1,
    )
    assert p.priority[p.index["root"]] == 4
    assert p.priority[p.index["lonely"]] == 3
    assert p.priority[p.index["c1"]] == 2
    assert run(p).launch_order()[:2] == ["root", "lonely"]


def test_max_active_tasks_argument_overrides_the_spec() -> None:
    p = plan([task(f"t{i}") for i in range(4)])
    rec = run(p, max_active_tasks=2)
    starts = [at for at, _ in rec.launches]
    assert starts == [T0, T0, T0 + timedelta(seconds=1), T0 + timedelta(seconds=1)]


# -- mark ------------------------------------------------------------------------------------------
def test_mark_a_running_task_success_lets_downstream_run() -> None:
    p = plan([task("a"), task("b", "a")])
    eng = engine(p)
    d = eng.start(T0)
    (a,) = d.launches
    eng.started(a.key, a.attempt, T0)
    d = eng.mark("a", S, T0 + timedelta(seconds=5))
    assert ("a", "MarkedByUser") in d.kills
    assert [launch.key for launch in d.launches] == ["b"]
    # the killed attempt's late report changes nothing
    late = eng.finished("a", a.attempt, FAIL, T0 + timedelta(seconds=6))
    assert eng.states()["a"] is S and not late.launches
    d = eng.finished("b", 1, OK, T0 + timedelta(seconds=7))
    assert d.finished is RunPhase.SUCCESS


def test_mark_a_running_task_failed() -> None:
    p = plan([task("a"), task("b", "a"), task("c", "a", triggerRule="one_failed")])
    eng = engine(p)
    d = eng.start(T0)
    (a,) = d.launches
    eng.started(a.key, a.attempt, T0)
    d = eng.mark("a", F, T0)
    assert eng.states()["b"] is UF
    assert [launch.key for launch in d.launches] == ["c"]
    assert eng.instances["a"].message and "user" in eng.instances["a"].message


def test_mark_a_failed_task_success_while_the_run_goes_on() -> None:
    """``kascade mark`` is how a user rescues a run: marking a failed task success must
    change its state (Airflow's "mark success")."""
    p = plan([task("a"), task("slow")])
    eng = engine(p)
    d = eng.start(T0)
    for launch in d.launches:
        eng.started(launch.key, launch.attempt, T0)
    eng.finished("a", 1, FAIL, T0 + timedelta(seconds=1))
    assert eng.states()["a"] is F
    eng.mark("a", S, T0 + timedelta(seconds=2))
    assert eng.states()["a"] is S
    d = eng.finished("slow", 1, OK, T0 + timedelta(seconds=3))
    assert d.finished is RunPhase.SUCCESS


def test_mark_a_waiting_task_skipped() -> None:
    p = plan([task("a"), task("b", "a"), task("c", "b")])
    eng = engine(p)
    eng.start(T0)
    eng.mark("b", K, T0)
    d = eng.finished("a", 1, OK, T0 + timedelta(seconds=1))
    assert not d.launches
    assert eng.states() == {"a": S, "b": K, "c": K}
    assert d.finished is RunPhase.SUCCESS


# -- determinism and bookkeeping ---------------------------------------------------------------
def test_late_and_duplicate_reports_are_ignored() -> None:
    p = plan([task("a", retries=1, retryDelay="1m"), task("b", "a")])
    eng = engine(p)
    d = eng.start(T0)
    eng.started("a", 1, T0)
    eng.finished("a", 1, FAIL, T0 + timedelta(seconds=1))
    dup = eng.finished("a", 1, OK, T0 + timedelta(seconds=2))
    assert not dup.launches and eng.states()["a"] is TaskState.UP_FOR_RETRY
    d = eng.tick(T0 + timedelta(minutes=2))
    assert [(launch.key, launch.attempt) for launch in d.launches] == [("a", 2)]


def test_time_sensor_target_is_in_the_pipeline_timezone() -> None:
    """Airflow's TimeSensor reads target_time in the DAG's timezone."""
    p = plan(
        [
            {"name": "wait", "sensor": {"kind": "time", "targetTime": "06:30"}},
            task("after", "wait"),
        ],
        timezone="Europe/Berlin",
    )
    rec = Recorder(engine(p), scripted({})).run(start=T0 + DAY)
    # The interval ends 2026-01-02 00:00 UTC (01:00 in Berlin): 06:30 Berlin is 05:30 UTC.
    ((at, _),) = rec.launches
    assert at == T0 + DAY + timedelta(hours=5, minutes=30)


class FakeRuns:
    """An externalTask lookup whose answer changes at a given time."""

    def __init__(self, state_after: dict[Any, str], clock: list[Any]) -> None:
        self.state_after = state_after
        self.clock = clock
        self.asked: list[tuple[str, str | None, Any]] = []

    def state(self, pipeline: str, task: str | None, logical_date: Any) -> str | None:
        self.asked.append((pipeline, task, logical_date))
        now = self.clock[0]
        found = [s for at, s in sorted(self.state_after.items()) if at <= now]
        return found[-1] if found else None


def external_dag(**sensor: Any) -> Any:
    base = {"kind": "externalTask", "pipeline": "up", "task": "load", "pokeInterval": "1m"}
    return plan([{"name": "wait", "sensor": base | sensor}, task("after", "wait")])


def drive_external(p: Any, runs: FakeRuns, clock: list[Any]) -> RunEngine:

    eng = RunEngine(p, engine(p).ctx, external=runs)
    d = eng.start(T0)
    for _ in range(100):
        if d.finished is not None:
            break
        for launch in d.launches:
            eng.started(launch.key, launch.attempt, clock[0])
            d = eng.finished(launch.key, launch.attempt, OK, clock[0])
            break
        else:
            assert d.wake_at is not None
            clock[0] = d.wake_at
            d = eng.tick(clock[0])
    return eng


def test_external_task_sensor_waits_for_success_of_the_offset_run() -> None:
    clock = [T0]
    runs = FakeRuns({T0 + timedelta(minutes=3): "success"}, clock)
    eng = drive_external(external_dag(logicalDateOffset="1d"), runs, clock)
    assert eng.states() == {"wait": S, "after": S}
    assert clock[0] == T0 + timedelta(minutes=3)
    assert {a[2] for a in runs.asked} == {T0 - DAY}
    assert {(a[0], a[1]) for a in runs.asked} == {("up", "load")}


def test_external_task_sensor_fails_on_a_failed_state() -> None:
    clock = [T0]
    runs = FakeRuns({T0 + timedelta(minutes=2): "failed"}, clock)
    eng = drive_external(external_dag(), runs, clock)
    assert eng.states() == {"wait": F, "after": UF}


def test_external_task_sensor_times_out() -> None:
    clock = [T0]
    runs = FakeRuns({}, clock)
    eng = drive_external(external_dag(timeout="10m", softFail=True), runs, clock)
    assert eng.states() == {"wait": K, "after": K}
    assert clock[0] == T0 + timedelta(minutes=10)


def test_datetime_sensor() -> None:
    p = plan(
        [
            {
                "name": "wait",
                "sensor": {"kind": "datetime", "targetTime": "{{ data_interval_end }}"},
            },
            task("after", "wait"),
        ]
    )
    rec = Recorder(engine(p), scripted({})).run(start=T0)
    ((at, _),) = rec.launches
    assert at == T0 + DAY


@pytest.mark.parametrize("special", [{"branch": True}, {"shortCircuit": True}])
def test_mark_success_on_a_running_branch_or_short_circuit_lets_downstream_run(
    special: dict[str, Any],
) -> None:
    """Airflow's "mark success" sets the state: no branch or condition is evaluated (the
    task never returned one), so downstream tasks follow their trigger rules."""
    p = plan([task("a", **special), task("b", "a"), task("c", "a")])
    eng = engine(p)
    d = eng.start(T0)
    (a,) = d.launches
    eng.started(a.key, a.attempt, T0)
    d = eng.mark("a", S, T0)
    assert eng.states()["a"] is S
    assert sorted(launch.key for launch in d.launches) == ["b", "c"]


@pytest.mark.parametrize(("soft", "state"), [(False, F), (True, K)])
def test_poke_mode_sensor_killed_at_its_timeout(soft: bool, state: TaskState) -> None:
    p = plan(
        [
            task("wait", retries=3, sensor={"mode": "poke", "timeout": "10m", "softFail": soft}),
            task("after", "wait"),
        ]
    )
    eng = engine(p)
    (launch,) = eng.start(T0).launches
    assert launch.timeout == timedelta(minutes=10)
    eng.started(launch.key, launch.attempt, T0)
    d = eng.finished("wait", 1, Result(None, reason="Timeout"), T0 + timedelta(minutes=10))
    assert eng.states() == {"wait": state, "after": K if soft else UF}
    assert d.finished is (RunPhase.SUCCESS if soft else RunPhase.FAILED)


def test_reschedule_sensor_launch_timeout_is_what_is_left() -> None:
    p = plan([sensor_task(timeout="5m", pokeInterval="2m")])
    rec = run(p, {"wait": [NOT_MET, NOT_MET, OK]})
    assert [launch.timeout for launch in rec.launched("wait")] == [
        timedelta(minutes=5),
        timedelta(minutes=5) - timedelta(minutes=2, seconds=1),
        timedelta(minutes=5) - timedelta(minutes=4, seconds=2),
    ]


def test_sensor_error_exit_is_retried_like_a_failure() -> None:
    p = plan([task("wait", retries=1, retryDelay="10s", sensor={"mode": "reschedule"})])
    rec = run(p, {"wait": [FAIL, OK]})
    assert [launch.attempt for launch in rec.launched("wait")] == [1, 2]
    assert rec.states == {"wait": S}


def test_env_script_and_args_are_templated_and_value_from_is_untouched() -> None:
    secret = {"secretKeyRef": {"name": "s", "key": "k"}}
    p = plan(
        [
            task("a"),
            task(
                "b",
                "a",
                command=None,
                script="echo {{ tasks.a.outputs.n }} {{ params.who }}",
                args=["--day={{ ds_nodash }}"],
                env=[
                    {"name": "N", "value": "{{ tasks.a.outputs.n }}"},
                    {"name": "S", "valueFrom": secret},
                ],
            ),
        ],
        params={"who": {"type": "string", "default": "me"}},
    )
    rec = run(p, {"a": out(n=3)}, params={"who": "you"})
    (b,) = rec.launched("b")
    assert b.spec.script == "echo 3 you"
    assert b.spec.args == ["--day=20260101"]
    env = {e.name: e for e in b.spec.env or []}
    assert env["N"].value == "3"
    assert env["S"].value_from == secret


def test_a_task_blocked_on_its_pool_does_not_block_others() -> None:
    from kascade.engine.pools import PoolLedger

    p = plan(
        [
            task("a", pool="p", priorityWeight=10),
            task("b", pool="p", priorityWeight=9),
            task("c", priorityWeight=1),
        ],
        maxActiveTasks=2,
    )
    pools = PoolLedger({"p": 1})
    rec = run(p, pools=pools)
    starts = {launch.key: at for at, launch in rec.launches}
    assert starts["a"] == T0 and starts["c"] == T0
    assert starts["b"] == T0 + timedelta(seconds=1)
    assert pools.used == {"p": 0}
