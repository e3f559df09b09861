"""A relative startDate (``-1d``, Airflow's ``days_ago(1)``) is resolved once and never moves.

The rule is the engine's (``engine/run_dates``); the operator records the resolution in the
Pipeline's status the first time it sees the pipeline (``controller/pipelines``), and the
SDK writes ``days_ago(n)`` as ``-<n>d`` so that the manifest is the same every day.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fake_kube import FakeKube

from kascade.api.pipeline import PipelineSpec
from kascade.controller import pipelines, scheduling
from kascade.controller.world import World
from kascade.engine.run_dates import PipelineSchedule, resolve_start_date
from kascade.engine.schedule import zone
from kascade.engine.validation import validate_spec

NOW = datetime(2026, 5, 1, 15, 42, 7, 123456, tzinfo=UTC)


def _spec(**fields: Any) -> PipelineSpec:
    return PipelineSpec.model_validate(
        {"tasks": [{"name": "a", "image": "busybox", "command": ["true"]}], **fields}
    )


@pytest.mark.parametrize(
    ("written", "tz", "expected"),
    [
        ("-1d", "UTC", datetime(2026, 4, 30, tzinfo=UTC)),  # days_ago(1): midnight
        ("-0d", "UTC", datetime(2026, 5, 1, tzinfo=UTC)),
        ("-2w", "UTC", datetime(2026, 4, 17, tzinfo=UTC)),
        ("-6h", "UTC", datetime(2026, 5, 1, 9, 42, 7, tzinfo=UTC)),  # to the second
        ("-1d", "Europe/Paris", datetime(2026, 4, 30, tzinfo=zone("Europe/Paris"))),
        ("2024-01-01", "UTC", datetime(2024, 1, 1, tzinfo=UTC)),  # absolute: as written
    ],
)
def test_a_relative_start_date_counts_back_from_now(
    written: str, tz: str, expected: datetime
) -> None:
    assert resolve_start_date(written, NOW, zone(tz)) == expected


def test_a_bad_relative_date_says_what_to_write() -> None:
    _, issues = validate_spec(_spec(startDate="-1 day", schedule="@daily"), "p")
    (issue,) = issues
    assert issue.path == "spec.startDate"
    assert "'-1 day' is not a relative date" in issue.message
    assert "-1d for Airflow's days_ago(1)" in issue.message


def test_only_the_start_date_may_be_relative() -> None:
    _, issues = validate_spec(_spec(startDate="-1d", endDate="-1d", schedule="@daily"), "p")
    assert [(i.path, i.message) for i in issues] == [
        (
            "spec.endDate",
            "'-1d': only startDate may be relative; write an ISO date (2024-12-31) or date-time",
        )
    ]
    plan, issues = validate_spec(_spec(startDate="-3d", schedule="@daily", catchup=True), "p")
    assert plan is not None and issues == []


def test_the_resolution_is_recorded_once_and_again_only_for_a_new_value() -> None:
    spec = _spec(startDate="-1d", schedule="@daily")
    first = pipelines.start_date_status(spec, {}, NOW)
    assert first == {"resolvedStartDate": {"written": "-1d", "date": "2026-04-30T00:00:00+00:00"}}
    later = NOW + timedelta(days=3)
    assert pipelines.start_date_status(spec, first, later) is None  # it does not move
    assert pipelines.resolved_start(spec, first) == datetime(2026, 4, 30, tzinfo=UTC)
    edited = _spec(startDate="-2d", schedule="@daily")
    assert pipelines.resolved_start(edited, first) is None
    again = pipelines.start_date_status(edited, first, later)
    assert again == {"resolvedStartDate": {"written": "-2d", "date": "2026-05-02T00:00:00+00:00"}}
    absolute = _spec(startDate="2026-01-01", schedule="@daily")
    assert pipelines.start_date_status(absolute, first, later) == {"resolvedStartDate": None}


def test_the_schedule_uses_the_resolved_date_and_refuses_an_unresolved_one() -> None:
    spec = _spec(startDate="-3d", schedule="@daily", catchup=True)
    with pytest.raises(ValueError, match="relative and not resolved"):
        PipelineSchedule.of(spec)
    start = datetime(2026, 4, 28, tzinfo=UTC)
    plan = scheduling.plan_schedule(spec, [], None, NOW, start)
    assert [i.start for i in plan.due] == [start + timedelta(days=n) for n in range(3)]


def test_the_operator_resolves_it_when_it_first_sees_the_pipeline_and_keeps_it() -> None:
    kube = FakeKube()
    clock = [NOW]
    world = World(kube, lambda *_: None, clock=lambda: clock[0])
    body = {
        "apiVersion": "kascade.io/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": "p", "namespace": "ns"},
        "spec": {
            "schedule": "@daily",
            "startDate": "-2d",
            "catchup": True,
            "tasks": [{"name": "a", "image": "busybox", "command": ["true"]}],
        },
    }
    created = kube.create("pipelines", "ns", body)
    assert created is not None

    async def scenario() -> list[str]:
        await world.on_pipeline("ADDED", created)
        clock[0] = NOW + timedelta(days=5)  # seen again days later (a restart, a resync)
        stored = kube.get("pipelines", "ns", "p")
        assert stored is not None
        await world.on_pipeline("MODIFIED", stored)
        return kube.names("pipelineruns")

    runs = asyncio.run(scenario())
    stored = kube.get("pipelines", "ns", "p")
    assert stored is not None
    assert stored["status"]["resolvedStartDate"] == {
        "written": "-2d",
        "date": "2026-04-29T00:00:00+00:00",
    }
    # Catchup from the resolved date: 2026-04-29 .. 2026-05-05 (seven intervals by the
    # second look), not from five days later.
    assert len(runs) == 7
    writes = [w for w in kube.writes if w[1] == "pipelines/status" and "resolvedStartDate" in w[3]]
    assert len(writes) == 1


DAG_FILE = """
from kascade.sdk import DAG, BashOperator, days_ago
with DAG("rolling", schedule="@daily", start_date=days_ago(1), catchup=True):
    BashOperator(task_id="t", bash_command="true")
with DAG("rolling_at_six", schedule="@daily", start_date=days_ago(1, hour=6)):
    BashOperator(task_id="t", bash_command="true")
"""


def test_days_ago_compiles_to_a_relative_start_date(tmp_path: Path) -> None:
    from kascade.sdk.compiler.project import Options, compile_paths

    path = tmp_path / "rolling.py"
    path.write_text(DAG_FILE)
    result = compile_paths([path], Options(target="image", image="dags:1", dags_folder="/d"))
    assert not result.problems, [str(p) for p in result.problems]
    specs = {c.dag.dag_id: c.pipeline["spec"] for c in result.dags}
    assert specs["rolling"]["startDate"] == "-1d"  # the same manifest every day
    assert "startDate" not in specs["rolling_at_six"]  # catchup=False: only bounds the first run
