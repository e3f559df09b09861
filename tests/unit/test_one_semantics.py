"""Issue 8's bugs: places where the local runner, the operator and Airflow disagreed.

Each test failed on the code before its fix; each names the rule it holds in place.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fake_kube import FakeKube
from helpers_engine import FAIL, OK, T0, plan, run, task
from prometheus_client import REGISTRY

from kascade.api.pipeline import PipelineSpec
from kascade.api.runs import RunPhase, TaskState
from kascade.cli import cluster_commands, run_setup
from kascade.cli.main import cli
from kascade.controller import scheduling
from kascade.controller.status import wire
from kascade.controller.world import World
from kascade.engine import templating
from kascade.engine.context import RunContext
from kascade.engine.decisions import Result
from kascade.engine.plan import Plan
from kascade.engine.run import RunEngine
from kascade.engine.run_dates import PipelineSchedule, manual_run
from kascade.engine.schedule import DataInterval, parse_schedule

S, F, K, UF = TaskState.SUCCESS, TaskState.FAILED, TaskState.SKIPPED, TaskState.UPSTREAM_FAILED
NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
HOURS_12 = timedelta(hours=12)


def out(**outputs: Any) -> Result:
    return Result(0, outputs=outputs)


def _spec(**fields: object) -> PipelineSpec:
    return PipelineSpec.model_validate(fields)


# -- 1. a startDate/endDate without a zone is read in spec.timezone, by every driver ------
def test_operator_reads_a_naive_start_date_in_the_pipeline_timezone() -> None:
    spec = _spec(schedule="@daily", timezone="Europe/Berlin", startDate="2024-01-01", catchup=True)
    now = datetime(2024, 1, 3, 12, tzinfo=UTC)
    due = scheduling.plan_schedule(spec, [], None, now).due
    # Midnight in Berlin is 23:00 UTC the day before: the first interval is not skipped.
    assert due[0].start == datetime(2023, 12, 31, 23, tzinfo=UTC)
    assert len(due) == 2


def test_operator_creates_no_run_before_a_naive_start_date_west_of_utc() -> None:
    spec = _spec(
        schedule="@hourly", timezone="America/New_York", startDate="2024-01-01", catchup=True
    )
    now = datetime(2024, 1, 1, 8, tzinfo=UTC)
    due = scheduling.plan_schedule(spec, [], None, now).due
    assert due[0].start == datetime(2024, 1, 1, 5, tzinfo=UTC)  # midnight EST
    assert len(due) == 3


def test_once_and_fixed_intervals_start_at_the_local_start_date() -> None:
    now = datetime(2024, 7, 1, tzinfo=UTC)
    once = _spec(schedule="@once", timezone="Europe/Berlin", startDate="2024-06-01T09:00")
    assert scheduling.plan_schedule(once, [], None, now).due[0].start == datetime(
        2024, 6, 1, 7, tzinfo=UTC
    )
    six = _spec(
        schedule="6h",
        timezone="Asia/Tokyo",
        startDate="2024-06-30T00:00",
        endDate="2024-06-30T05:00",
        catchup=True,
    )
    due = scheduling.plan_schedule(six, [], None, now).due
    assert [(i.start, i.end - i.start) for i in due] == [
        (datetime(2024, 6, 29, 15, tzinfo=UTC), timedelta(hours=6))
    ]


# -- 2. one rule for a manual run's logical date and data interval -----------------------
DAILY_PIPELINE = {
    "apiVersion": "kascade.io/v1alpha1",
    "kind": "Pipeline",
    "metadata": {"name": "daily", "namespace": "ns", "uid": "u-1"},
    "spec": {
        "schedule": "@daily",
        "defaults": {"image": "busybox:1.36"},
        "tasks": [{"name": "t", "command": ["true"]}],
    },
}
JAN_14, JAN_15 = datetime(2024, 1, 14, tzinfo=UTC), datetime(2024, 1, 15, tzinfo=UTC)
AIRFLOW_MANUAL = (JAN_15, DataInterval(JAN_14, JAN_15))
"""Airflow 3's dag.test(logical_date=2024-01-15) for @daily: that logical date, and the
interval infer_manual_data_interval gives: the latest complete one ending at or before it."""


def test_the_manual_run_rule() -> None:
    run = manual_run(parse_schedule("@daily"), logical_date=JAN_15, now=NOW)
    assert (run.logical_date, run.interval) == AIRFLOW_MANUAL
    at_noon = manual_run(parse_schedule("@daily"), logical_date=None, now=JAN_15 + HOURS_12)
    assert (at_noon.logical_date, at_noon.interval) == (JAN_15 + HOURS_12, AIRFLOW_MANUAL[1])


def test_kascade_run_with_a_logical_date_follows_the_rule() -> None:
    spec = PipelineSpec.model_validate(DAILY_PIPELINE["spec"])
    run = run_setup.run_dates(spec, "2024-01-15", NOW)
    assert (run.logical_date, run.interval) == AIRFLOW_MANUAL


def test_kascade_trigger_follows_the_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    kube = FakeKube()
    kube.create("pipelines", "ns", copy.deepcopy(DAILY_PIPELINE))
    monkeypatch.setattr(cluster_commands, "_kube", lambda _config: kube)
    result = CliRunner().invoke(
        cli, ["trigger", "daily", "-n", "ns", "--logical-date", "2024-01-15"]
    )
    assert result.exit_code == 0, result.output
    (run,) = kube.list_objects("pipelineruns", "ns")
    assert _dates_of(run) == AIRFLOW_MANUAL


def test_a_pipeline_run_applied_with_only_a_logical_date_follows_the_rule() -> None:
    kube = FakeKube()
    world = World(kube, lambda *_: None)
    body = {
        "apiVersion": "kascade.io/v1alpha1",
        "kind": "PipelineRun",
        "metadata": {"name": "by-hand", "namespace": "ns", "uid": "u-2"},
        "spec": {
            "pipelineRef": {"name": "daily"},
            "pipelineSpec": DAILY_PIPELINE["spec"],
            "logicalDate": "2024-01-15T00:00:00Z",
        },
    }

    async def start() -> RunContext:
        await world.on_run("ADDED", body)
        return world.drivers[("ns", "by-hand")].ctx

    ctx = asyncio.run(start())
    assert (ctx.logical_date, ctx.interval) == AIRFLOW_MANUAL
    assert ctx.run_id == "manual__2024-01-15T00:00:00+00:00"


def test_the_e2e_helper_creates_runs_by_the_rule() -> None:
    from e2e.operator_support import Kascade

    kube = FakeKube()
    kube.create("pipelines", "ns", copy.deepcopy(DAILY_PIPELINE))
    helper = Kascade.__new__(Kascade)
    helper.ns = "ns"
    helper.custom = _CustomObjects(kube)
    name = helper.create_run("daily", logical_date="2024-01-15T00:00:00+00:00")
    run = kube.get("pipelineruns", "ns", name)
    assert run is not None and _dates_of(run) == AIRFLOW_MANUAL


class _CustomObjects:
    """The two CustomObjectsApi calls the e2e helper makes, over a FakeKube."""

    def __init__(self, kube: FakeKube) -> None:
        self.kube = kube

    def get_namespaced_custom_object(
        self, group: str, version: str, ns: str, plural: str, name: str
    ) -> dict[str, Any]:
        obj = self.kube.get(plural, ns, name)
        assert obj is not None
        return obj

    def create_namespaced_custom_object(
        self, group: str, version: str, ns: str, plural: str, body: dict[str, Any]
    ) -> dict[str, Any] | None:
        return self.kube.create(plural, ns, body)


def _dates_of(run: dict[str, Any]) -> tuple[datetime, DataInterval]:
    spec = run["spec"]
    return datetime.fromisoformat(spec["logicalDate"]), DataInterval(
        datetime.fromisoformat(spec["dataInterval"]["start"]),
        datetime.fromisoformat(spec["dataInterval"]["end"]),
    )


# -- 3. retryDelay: 0s retries at once ---------------------------------------------------------
def test_a_zero_retry_delay_is_not_the_default() -> None:
    p = plan([task("t", retries=1, retryDelay="0s")])
    assert p.task("t").retry_delay == timedelta(0)
    rec = run(p, {"t": [FAIL, OK]})
    _, second = rec.launched("t")
    assert second.attempt == 2
    times = [at for at, _ in rec.launches]
    assert times[1] - times[0] == timedelta(seconds=1)  # the attempt's duration, no wait


# -- 4. a branch or short-circuit skip wins over upstream_failed, whatever finishes first ------
def _branch_beside_a_failure() -> Plan:
    return plan(
        [
            task("pick", branch=True),
            task("f"),
            task("x", "pick", "f"),
            task("y", "pick"),
            task("join", "x", "y", triggerRule="none_failed_min_one_success"),
        ]
    )


@pytest.mark.parametrize("first", ["f", "pick"])
def test_a_branch_skip_overrides_upstream_failed_in_any_order(first: str) -> None:
    later = {"f": "pick", "pick": "f"}[first]
    rec = run(
        _branch_beside_a_failure(),
        {"pick": out(branch="y"), "f": FAIL},
        durations={first: timedelta(seconds=1), later: timedelta(seconds=5)},
    )
    assert rec.states == {"pick": S, "f": F, "x": K, "y": S, "join": S}


@pytest.mark.parametrize("first", ["f", "check"])
def test_a_short_circuit_skip_overrides_upstream_failed_in_any_order(first: str) -> None:
    later = {"f": "check", "check": "f"}[first]
    p = plan(
        [
            task("check", shortCircuit=True),
            task("f"),
            task("x", "check", "f"),
            task("z", "x"),
        ]
    )
    rec = run(
        p,
        {"check": out(condition=False), "f": FAIL},
        durations={first: timedelta(seconds=1), later: timedelta(seconds=5)},
    )
    assert rec.states == {"check": S, "f": F, "x": K, "z": K}


# -- 5. DST fall-back: a repeated wall time fires at its second occurrence (Airflow, fold=1) ----
def test_a_repeated_wall_time_fires_at_its_second_occurrence() -> None:
    berlin = PipelineSchedule.of(
        _spec(schedule="30 2 * * *", timezone="Europe/Berlin", startDate="2026-10-24", catchup=True)
    )
    got = berlin.due(last=None, now=datetime(2026, 10, 27, tzinfo=UTC))
    # 2026-10-25 02:30 happens at 00:30Z (CEST) and at 01:30Z (CET): Airflow takes the second.
    assert [(i.start, i.end) for i in got] == [
        (datetime(2026, 10, 24, 0, 30, tzinfo=UTC), datetime(2026, 10, 25, 1, 30, tzinfo=UTC)),
        (datetime(2026, 10, 25, 1, 30, tzinfo=UTC), datetime(2026, 10, 26, 1, 30, tzinfo=UTC)),
    ]
    new_york = PipelineSchedule.of(
        _spec(schedule="30 1 * * *", timezone="America/New_York", startDate="2026-10-31")
    )
    assert new_york.next_run(last=None, now=datetime(2026, 11, 1, 5, 45, tzinfo=UTC)) == datetime(
        2026, 11, 1, 6, 30, tzinfo=UTC
    )


# -- 6. macros render exactly Airflow's strings --------------------------------------------------
def test_macros_render_airflows_strings() -> None:
    logical = datetime(2024, 1, 15, 12, 30, 5, 123456, tzinfo=UTC)
    ctx = templating.macro_context(
        logical_date=logical,
        interval=DataInterval(JAN_14, JAN_15),
        run_id="manual__x",
        pipeline_name="p",
        namespace="ns",
        params={},
        task_outputs={},
    )
    rendered = {
        name: templating.render("{{ " + name + " }}", ctx)
        for name in (
            "ds",
            "ds_nodash",
            "ts",
            "ts_nodash",
            "ts_nodash_with_tz",
            "logical_date",
            "data_interval_start",
            "data_interval_end",
        )
    }
    # str() of Airflow's pendulum DateTime for the dates; ts is isoformat(); ts_nodash_with_tz
    # is ts without '-' and ':' (microseconds kept); ts_nodash is strftime('%Y%m%dT%H%M%S').
    assert rendered == {
        "ds": "2024-01-15",
        "ds_nodash": "20240115",
        "ts": "2024-01-15T12:30:05.123456+00:00",
        "ts_nodash": "20240115T123005",
        "ts_nodash_with_tz": "20240115T123005.123456+0000",
        "logical_date": "2024-01-15 12:30:05.123456+00:00",
        "data_interval_start": "2024-01-14 00:00:00+00:00",
        "data_interval_end": "2024-01-15 00:00:00+00:00",
    }


# -- 7. sensors: one policy for every poker ------------------------------------------------------
def test_engine_sensors_back_off_like_every_other_sensor() -> None:
    p = plan(
        [
            {
                "name": "wait",
                "sensor": {
                    "kind": "externalTask",
                    "pipeline": "other",
                    "pokeInterval": "10s",
                    "exponentialBackoff": True,
                },
            }
        ]
    )
    eng = RunEngine(p, _ctx(), external=_NeverThere())
    wakes = [eng.start(T0).wake_at]
    for _ in range(3):
        now = wakes[-1]
        assert now is not None
        wakes.append(eng.tick(now).wake_at)
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise([T0, *wakes])]
    policy = p.task("wait").sensor
    assert policy is not None
    assert gaps == [policy.wait_after(n).total_seconds() for n in range(1, 5)] == [10, 20, 40, 80]


class _NeverThere:
    def state(self, pipeline: str, task: str | None, logical_date: datetime) -> str | None:
        return None


def _ctx() -> RunContext:
    return RunContext("manual__x", T0, DataInterval(T0, T0 + timedelta(days=1)), {}, "p")


# -- 8. branching as Airflow 3.3's skip_all_except ----------------------------------------------
def _branch_dag() -> Plan:
    return plan(
        [
            task("pick", branch=True),
            task("b", "pick"),
            task("c", "pick"),
            task("after-b", "b"),
            task("far", "after-b"),
            task("c-too", "c", "far"),
        ]
    )


def test_a_branch_without_a_choice_skips_every_direct_downstream_task() -> None:
    for outputs in ({}, {"branch": None}, {"branch": []}):
        rec = run(_branch_dag(), {"pick": Result(0, outputs=outputs)})
        assert rec.states == {"pick": S, "b": K, "c": K, "after-b": K, "far": K, "c-too": K}
        assert rec.phase is RunPhase.SUCCESS
        assert [launch.attempt for launch in rec.launched("pick")] == [1]


def test_a_branch_choosing_a_task_that_is_not_directly_downstream_keeps_its_downstream() -> None:
    # Airflow keeps every direct downstream task that is the choice or below it: c-too is
    # below far, but c is not, so c is skipped (and c-too with it, by all_success).
    rec = run(_branch_dag(), {"pick": out(branch="far")})
    assert rec.states == {"pick": S, "b": K, "c": K, "after-b": K, "far": K, "c-too": K}
    keep = run(
        plan(
            [task("pick", branch=True), task("b", "pick"), task("x", "b"), task("y", "pick", "x")]
        ),
        {"pick": out(branch="x")},
    )
    assert keep.states == {"pick": S, "b": K, "x": K, "y": K}
    assert keep.engine.instances["y"].message == "trigger rule all_success"


def test_a_branch_choosing_an_id_that_is_not_in_the_pipeline_fails() -> None:
    rec = run(_branch_dag(), {"pick": out(branch=["b", "nope"])})
    inst = rec.engine.instances["pick"]
    assert inst.state is F
    assert inst.message == (
        "branch chose 'nope', which is not a task or group of this pipeline "
        "(the tasks directly downstream of pick: b, c)"
    )
    assert rec.states["b"] is UF


# -- 9. every documented metric and status field is set -----------------------------------------
def _run_body(name: str, spec: dict[str, Any], **run_spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "kascade.io/v1alpha1",
        "kind": "PipelineRun",
        "metadata": {"name": name, "namespace": "ns9", "uid": f"u-{name}", "generation": 3},
        "spec": {"pipelineRef": {"name": "p9"}, "pipelineSpec": spec, **run_spec},
    }


def _sample(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def test_queued_tasks_counts_what_waits_for_a_slot() -> None:
    spec = {
        "defaults": {"image": "busybox:1.36", "pool": "one"},
        "tasks": [{"name": "a", "command": ["true"]}, {"name": "b", "command": ["true"]}],
    }
    world = World(FakeKube(), lambda *_: None)

    async def start() -> None:
        world.on_pool(
            "ADDED", {"metadata": {"namespace": "ns9", "name": "one"}, "spec": {"slots": 1}}
        )
        await world.on_run("ADDED", _run_body("queued", spec))

    asyncio.run(start())
    assert _sample("kascade_queued_tasks", namespace="ns9", pool="one") == 1


def test_time_to_sla_is_the_nearest_deadline_of_active_runs() -> None:
    spec = {
        "sla": "1h",
        "defaults": {"image": "busybox:1.36"},
        "tasks": [{"name": "a", "command": ["true"], "sla": "10m"}],
    }
    world = World(FakeKube(), lambda *_: None)
    at = datetime.now(UTC)

    async def start() -> None:
        await world.on_run("ADDED", _run_body("sla", spec, logicalDate=at.isoformat()))

    asyncio.run(start())
    left = _sample("kascade_time_to_sla_seconds", namespace="ns9", pipeline="p9")
    assert left is not None and 500 < left <= 600  # the task's deadline comes first


def test_run_status_has_next_wakeup_sla_missed_and_observed_generation() -> None:
    spec = {
        "defaults": {"image": "busybox:1.36"},
        "tasks": [{"name": "a", "command": ["true"], "retries": 1, "retryDelay": "1h"}],
    }
    world = World(FakeKube(), lambda *_: None)

    async def start() -> dict[str, Any]:
        await world.on_run("ADDED", _run_body("status", spec))
        driver = world.drivers[("ns9", "status")]
        now = datetime.now(UTC)
        driver.engine.finished("a", 1, FAIL, now)
        driver.engine.tick(now)
        status = wire(driver.run_status())
        driver.sla_misses.add("a")
        after = driver.run_status()
        return {**status, "after-miss": (after.sla_missed, after.sla_misses)}

    status = asyncio.run(start())
    assert status["observedGeneration"] == 3
    assert status["nextWakeup"] is not None  # the retry, an hour away
    assert status["slaMissed"] is False and status["after-miss"] == (True, ["a"])


def test_no_task_state_is_documented_but_never_set() -> None:
    assert "removed" not in {s.value for s in TaskState}


# -- 10. the local runner uses or refuses what a file holds, never drops it silently -------------
def _kascade(tmp_path: Path, text: str, *args: str) -> tuple[int, str, str]:
    path = tmp_path / "pipeline.yaml"
    path.write_text(text)
    env = {"KASCADE_HOME": str(tmp_path / "home")}
    result = CliRunner().invoke(cli, ["run", str(path), "--output", "json", *args], env=env)
    return result.exit_code, result.stdout, result.stderr


POOLED = """
apiVersion: kascade.io/v1alpha1
kind: Pool
metadata: {name: db}
spec: {slots: 1}
---
apiVersion: kascade.io/v1alpha1
kind: Pipeline
metadata: {name: pooled}
spec:
  defaults: {image: busybox, pool: db}
  tasks:
    - {name: a, script: 'mkdir lock || exit 9; sleep 0.3; rmdir lock'}
    - {name: b, script: 'mkdir lock || exit 9; sleep 0.3; rmdir lock'}
"""


def test_a_pool_document_in_the_file_sizes_the_pool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = _kascade(tmp_path, POOLED)
    assert code == 0, err + out
    assert {t["state"] for t in json.loads(out)["tasks"].values()} == {"success"}


def test_an_unknown_pool_is_an_error_before_anything_runs(tmp_path: Path) -> None:
    text = POOLED.split("---\n", 1)[1]  # the Pipeline without its Pool
    code, out, err = _kascade(tmp_path, text)
    assert code == 2 and not out
    assert (
        "spec.defaults.pool: pool 'db' is not defined here: add a Pool document to the file "
        "or --pool db=SLOTS" in err
    )


def test_pool_names_are_kubernetes_object_names(tmp_path: Path) -> None:
    text = POOLED.replace("pool: db", "pool: large_processing_pool")
    code, _, err = _kascade(tmp_path, text)
    assert code == 2
    assert (
        "spec.defaults.pool: 'large_processing_pool' cannot name a Pool: pool names are "
        "Kubernetes object names (lowercase letters, digits, '-' and '.'); "
        "use 'large-processing-pool'" in err
    )


ENV_FROM_FILE = """
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {GREETING: hello, bad-key: skipped}
---
apiVersion: v1
kind: Secret
metadata: {name: wh-conn}
stringData: {HOST: db.local}
data: {PASSWORD: c2VjcmV0}
---
apiVersion: kascade.io/v1alpha1
kind: Pipeline
metadata: {name: env}
spec:
  variables: [{configMap: settings}, {configMap: elsewhere}]
  connections: [{name: warehouse, secret: wh-conn}]
  tasks:
    - name: t
      image: busybox
      script: |
        echo "greeting=$VAR_GREETING" >> "$KASCADE_OUTPUTS"
        echo "host=$CONN_WAREHOUSE_HOST" >> "$KASCADE_OUTPUTS"
        echo "password=$CONN_WAREHOUSE_PASSWORD" >> "$KASCADE_OUTPUTS"
"""


def test_variables_and_connections_come_from_configmaps_and_secrets_in_the_file(
    tmp_path: Path,
) -> None:
    code, out, err = _kascade(tmp_path, ENV_FROM_FILE)
    assert code == 0, err
    assert json.loads(out)["tasks"]["t"]["outputs"] == {
        "greeting": "hello",
        "host": "db.local",
        "password": "secret",
    }
    assert (
        "spec.variables[1]: ConfigMap 'elsewhere' is not in the file: "
        "its keys are not set in this run" in err
    )
    assert "secret" not in err  # a secret value is never shown


def test_the_cluster_holds_a_task_whose_pool_does_not_exist() -> None:
    spec = {
        "defaults": {"image": "busybox:1.36", "pool": "later"},
        "tasks": [{"name": "a", "command": ["true"]}],
    }
    kube = FakeKube()
    events: list[tuple[str, str, str]] = []
    world = World(kube, lambda _obj, kind, reason, message: events.append((kind, reason, message)))

    async def start() -> tuple[list[str], list[str]]:
        await world.on_run("ADDED", _run_body("pool-later", spec))
        before = kube.names("pods")
        world.on_pool(
            "ADDED", {"metadata": {"namespace": "ns9", "name": "later"}, "spec": {"slots": 1}}
        )
        await world.drivers[("ns9", "pool-later")].tick(datetime.now(UTC))
        return before, kube.names("pods")

    before, after = asyncio.run(start())
    assert before == [] and len(after) == 1
    assert (
        "Warning",
        "TaskWaiting",
        "a waits: pool 'later' does not exist in namespace ns9",
    ) in events
