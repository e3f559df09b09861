"""validate_document: every problem reported, each with the field path it is about."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from helpers_engine import doc, task

from kascade.engine.errors import Issue
from kascade.engine.validation import validate_document


def issues(**spec: Any) -> list[Issue]:
    _model, plan, found = validate_document(doc(**spec))
    if found:
        assert plan is None, "a plan must never come with issues"
    return found


def paths(**spec: Any) -> list[str]:
    return [i.path for i in issues(**spec)]


def only(**spec: Any) -> Issue:
    found = issues(**spec)
    assert len(found) == 1, found
    return found[0]


# -- structure ----
def test_cycle_of_two_names_its_path() -> None:
    issue = only(tasks=[task("a", "b"), task("b", "a")])
    assert "a -> b -> a" in issue.message
    assert issue.path == "spec.tasks[0].dependsOn"


def test_longer_cycle_names_every_task_and_closes() -> None:
    issue = only(tasks=[task("start"), task("a", "c"), task("b", "a"), task("c", "b")])
    assert "cycle" in issue.message
    cycle = issue.message.split(": ", 1)[1].split(" -> ")
    assert cycle[0] == cycle[-1]
    assert sorted(cycle[:-1]) == ["a", "b", "c"]
    # each step follows a real edge, upstream to downstream
    deps = {"a": {"c"}, "b": {"a"}, "c": {"b"}}
    for up, down in itertools.pairwise(cycle):
        assert up in deps[down]


def test_cycle_through_groups() -> None:
    issue = only(
        groups=[
            {"name": "g", "dependsOn": ["h"], "tasks": [task("a")]},
            {"name": "h", "dependsOn": ["g"], "tasks": [task("b")]},
        ]
    )
    assert "g.a -> h.b -> g.a" in issue.message or "h.b -> g.a -> h.b" in issue.message


def test_self_dependency() -> None:
    issue = only(tasks=[task("a", "a")])
    assert issue.path == "spec.tasks[0].dependsOn[0]"


def test_unknown_dependency_has_the_field_path() -> None:
    issue = only(tasks=[task("a"), task("b", "a", "zzz")])
    assert issue.path == "spec.tasks[1].dependsOn[1]"
    assert "zzz" in issue.message


def test_unknown_dependency_inside_a_group_suggests_the_qualified_name() -> None:
    issue = only(
        tasks=[task("end", "load")],
        groups=[{"name": "etl", "tasks": [task("load")]}],
    )
    assert issue.path == "spec.tasks[0].dependsOn[0]"
    assert "etl.load" in issue.message


def test_unknown_group_dependency_path() -> None:
    issue = only(groups=[{"name": "g", "dependsOn": ["nope"], "tasks": [task("a")]}])
    assert issue.path == "spec.groups[0].dependsOn[0]"


@pytest.mark.parametrize(
    ("spec", "path"),
    [
        ({"tasks": [task("a"), task("a")]}, "spec.tasks[1].name"),
        (
            {"tasks": [task("a")], "groups": [{"name": "a", "tasks": [task("x")]}]},
            "spec.groups[0].name",
        ),
        (
            {"groups": [{"name": "g", "tasks": [task("x"), task("x")]}]},
            "spec.groups[0].tasks[1].name",
        ),
    ],
)
def test_duplicate_names(spec: dict[str, Any], path: str) -> None:
    issue = only(**spec)
    assert issue.path == path
    assert "duplicate" in issue.message


def test_same_short_name_in_two_groups_is_fine() -> None:
    assert not issues(
        groups=[{"name": "g", "tasks": [task("x")]}, {"name": "h", "tasks": [task("x")]}]
    )


def test_a_task_cannot_depend_on_its_own_group() -> None:
    issue = only(groups=[{"name": "g", "tasks": [task("a", "g")]}])
    assert issue.path == "spec.groups[0].tasks[0].dependsOn[0]"


def test_empty_group_and_empty_pipeline() -> None:
    assert "spec.groups[0]" in paths(groups=[{"name": "g", "tasks": []}], tasks=[task("a")])
    assert "spec.tasks" in paths()


# -- templates ----
TPL = {
    "name": "t",
    "inputs": [{"name": "table"}, {"name": "mode", "default": "full"}],
    "task": {"command": ["load", "{{ inputs.table }}", "{{ inputs.mode }}"]},
}


def test_task_template_inputs() -> None:
    assert not issues(
        templates=[TPL], tasks=[task("a", template={"name": "t", "inputs": {"table": "x"}})]
    )
    issue = only(templates=[TPL], tasks=[task("a", template={"name": "t"})])
    assert issue.path == "spec.tasks[0].template.inputs"
    assert "table" in issue.message


def test_unknown_template_input() -> None:
    found = issues(
        templates=[TPL],
        tasks=[task("a", template={"name": "t", "inputs": {"table": "x", "bogus": 1}})],
    )
    assert [i.path for i in found] == ["spec.tasks[0].template.inputs.bogus"]


def test_unknown_template_and_wrong_kind() -> None:
    assert paths(tasks=[task("a", template={"name": "nope"})]) == ["spec.tasks[0].template.name"]
    group_tpl = {"name": "gt", "tasks": [task("x")]}
    found = issues(templates=[group_tpl, TPL], tasks=[task("a", template={"name": "gt"})])
    assert [i.path for i in found] == ["spec.tasks[0].template.name"]
    found = issues(
        templates=[group_tpl, TPL],
        groups=[{"name": "g", "template": {"name": "t", "inputs": {"table": "x"}}}],
    )
    assert "spec.groups[0].template.name" in [i.path for i in found]


def test_template_with_both_task_and_tasks() -> None:
    found = issues(
        templates=[{"name": "x", "task": {"command": ["a"]}, "tasks": [task("y")]}],
        tasks=[task("a")],
    )
    assert [i.path for i in found] == ["spec.templates[0]"]


def test_duplicate_template_name() -> None:
    found = issues(templates=[TPL, TPL], tasks=[task("a")])
    assert [i.path for i in found] == ["spec.templates[1].name"]


def test_input_reference_outside_a_template() -> None:
    issue = only(tasks=[task("a", command=["echo", "{{ inputs.x }}"])])
    assert issue.path == "spec.tasks[0].command[1]"


def test_recursive_group_template() -> None:
    found = issues(
        templates=[{"name": "r", "groups": [{"name": "inner", "template": {"name": "r"}}]}],
        groups=[{"name": "g", "template": {"name": "r"}}],
        tasks=[task("a")],
    )
    assert any("instantiates itself" in i.message for i in found)


def test_issues_inside_a_group_template_point_into_the_template() -> None:
    found = issues(
        templates=[{"name": "etl", "tasks": [task("a", "nope")]}],
        groups=[{"name": "g", "template": {"name": "etl"}, "tasks": [task("own")]}],
    )
    assert [i.path for i in found] == ["spec.templates[0].tasks[0].dependsOn[0]"]


# -- schedule and durations ----
@pytest.mark.parametrize("schedule", ["61 * * * *", "* * *", "@fortnightly", "every day"])
def test_bad_schedule(schedule: str) -> None:
    assert paths(tasks=[task("a")], schedule=schedule) == ["spec.schedule"]


@pytest.mark.parametrize("schedule", [None, "@daily", "0 3 * * 1-5", "6h", "@hourly"])
def test_good_schedule(schedule: str | None) -> None:
    assert not issues(tasks=[task("a")], schedule=schedule)


def test_bad_timezone_and_bad_schedule_both_reported() -> None:
    found = issues(tasks=[task("a")], timezone="Mars/Olympus", schedule="61 * * * *")
    assert sorted(i.path for i in found) == ["spec.schedule", "spec.timezone"]


def test_bad_timezone() -> None:
    assert paths(tasks=[task("a")], schedule="@daily", timezone="Mars/Olympus") == ["spec.timezone"]


@pytest.mark.parametrize(
    ("fields", "path"),
    [
        ({"retryDelay": "5 parsecs"}, "spec.tasks[0].retryDelay"),
        ({"maxRetryDelay": "x"}, "spec.tasks[0].maxRetryDelay"),
        ({"timeout": "-1s"}, "spec.tasks[0].timeout"),
        ({"startTimeout": "soon"}, "spec.tasks[0].startTimeout"),
        ({"sla": "1y"}, "spec.tasks[0].sla"),
        ({"sensor": {"pokeInterval": "x"}}, "spec.tasks[0].sensor.pokeInterval"),
        ({"sensor": {"timeout": "x"}}, "spec.tasks[0].sensor.timeout"),
    ],
)
def test_bad_task_durations(fields: dict[str, Any], path: str) -> None:
    assert paths(tasks=[task("a", **fields)]) == [path]


def test_bad_pipeline_durations() -> None:
    found = issues(tasks=[task("a")], runTimeout="abc", sla="?", history={"ttl": "nope"})
    assert sorted(i.path for i in found) == ["spec.history.ttl", "spec.runTimeout", "spec.sla"]


def test_bad_defaults_duration_is_reported_once_where_it_is_written() -> None:
    found = issues(defaults={"retryDelay": "bogus"}, tasks=[task("a"), task("b")])
    assert [i.path for i in found] == ["spec.defaults.retryDelay"]


def test_bad_group_defaults_duration_is_reported_on_the_group_defaults() -> None:
    found = issues(
        groups=[{"name": "g", "defaults": {"sla": "x"}, "tasks": [task("a"), task("b", sla="1h")]}]
    )
    assert [i.path for i in found] == ["spec.groups[0].defaults.sla"]


def test_bad_template_duration_is_reported_on_the_template() -> None:
    found = issues(
        templates=[{"name": "t", "task": {"command": ["x"], "timeout": "zz"}}],
        tasks=[task("a", template={"name": "t"}), task("b", template={"name": "t"})],
    )
    assert [i.path for i in found] == ["spec.templates[0].task.timeout"]


def test_dates() -> None:
    assert paths(tasks=[task("a")], startDate="2026-13-01") == ["spec.startDate"]
    assert paths(tasks=[task("a")], startDate="2026-02-01", endDate="2026-01-01") == [
        "spec.endDate"
    ]
    assert paths(tasks=[task("a")], schedule="@once") == ["spec.startDate"]


# -- templates and references ----
def test_unclosed_template() -> None:
    issue = only(tasks=[task("a", command=["echo", "{{ ds "])])
    assert issue.path == "spec.tasks[0].command[1]"


@pytest.mark.parametrize(
    ("fields", "path"),
    [
        ({"image": "img:{{ nope }}"}, "spec.tasks[0].image"),
        ({"args": ["{{ nope }}"]}, "spec.tasks[0].args[0]"),
        ({"script": "echo {{ nope }}"}, "spec.tasks[0].script"),
        ({"env": [{"name": "X", "value": "{{ nope }}"}]}, "spec.tasks[0].env[0].value"),
        ({"workingDir": "/{{ nope }}"}, "spec.tasks[0].workingDir"),
        ({"when": "nope == 1"}, "spec.tasks[0].when"),
    ],
)
def test_unknown_template_variable_paths(fields: dict[str, Any], path: str) -> None:
    issue = only(tasks=[task("a", **fields)])
    assert issue.path == path
    assert "nope" in issue.message


def test_reference_to_a_non_upstream_task() -> None:
    issue = only(tasks=[task("a"), task("b", command=["echo", "{{ tasks.a.outputs.x }}"])])
    assert issue.path == "spec.tasks[1].command[1]"
    assert "not upstream" in issue.message


def test_reference_to_an_indirect_upstream_is_fine() -> None:
    assert not issues(
        tasks=[task("a"), task("b", "a"), task("c", "b", command=["{{ tasks.a.outputs.x }}"])]
    )


def test_reference_to_an_unknown_task_and_undeclared_output() -> None:
    assert "no such task" in only(tasks=[task("a", when="tasks.zz.outputs.x")]).message
    issue = only(
        tasks=[task("a", outputs=["n"]), task("b", "a", command=["{{ tasks.a.outputs.m }}"])]
    )
    assert issue.path == "spec.tasks[1].command[0]"
    assert "'m'" in issue.message


def test_expand_param_references_are_checked() -> None:
    issue = only(tasks=[task("a"), task("m", expand={"param": "tasks.a.outputs.files"})])
    assert issue.path == "spec.tasks[1].expand.param"


def test_item_only_in_mapped_tasks() -> None:
    assert paths(tasks=[task("a", command=["{{ item }}"])]) == ["spec.tasks[0].command[0]"]
    assert not issues(tasks=[task("a", command=["{{ item }}"], expand={"items": [1]})])


def test_undeclared_params() -> None:
    spec = {"params": {"region": {"type": "string", "default": "eu"}}}
    issue = only(tasks=[task("a", command=["{{ params.zone }}"])], **spec)
    assert issue.path == "spec.tasks[0].command[0]"
    assert "zone" in issue.message
    assert not issues(tasks=[task("a", command=["{{ params.region }}"])], **spec)
    # Without a params block, any param may be passed at run time (as in Airflow).
    assert not issues(tasks=[task("a", command=["{{ params.zone }}"])])


def test_group_sibling_references_resolve_like_depends_on() -> None:
    assert not issues(
        groups=[
            {
                "name": "g",
                "tasks": [task("a"), task("b", "a", command=["{{ tasks.a.outputs.x }}"])],
            }
        ]
    )


# -- branching, mapping, sensors, misc ----
def test_branch_targets_must_be_direct_downstream() -> None:
    issue = only(tasks=[task("a", branch=True, branchTargets=["c"]), task("b", "a"), task("c")])
    assert issue.path == "spec.tasks[0].branchTargets[0]"
    assert "b" in issue.message


def test_branch_target_can_be_a_downstream_group() -> None:
    assert not issues(
        tasks=[task("a", branch=True, branchTargets=["g"])],
        groups=[{"name": "g", "dependsOn": ["a"], "tasks": [task("x")]}],
    )


def test_branch_without_downstream_and_branch_targets_without_branch() -> None:
    assert paths(tasks=[task("a", branch=True)]) == ["spec.tasks[0].branch"]
    assert paths(tasks=[task("a", branchTargets=["b"]), task("b", "a")]) == [
        "spec.tasks[0].branchTargets"
    ]


def test_branch_and_short_circuit_exclusive() -> None:
    assert "spec.tasks[0].shortCircuit" in paths(
        tasks=[task("a", branch=True, shortCircuit=True), task("b", "a")]
    )


def test_expand_checks() -> None:
    declared = {"x": {"type": "array", "default": [1]}}
    assert paths(
        tasks=[task("a", expand={"items": [1], "param": "params.x"})], params=declared
    ) == ["spec.tasks[0].expand"]
    assert paths(tasks=[task("a", expand={})]) == ["spec.tasks[0].expand"]
    assert "spec.tasks[0].expand" in paths(
        tasks=[task("a", branch=True, expand={"items": [1]}), task("b", "a")]
    )


def test_sensor_checks() -> None:
    assert paths(tasks=[task("a", sensor={"kind": "file"})]) == ["spec.tasks[0].sensor.path"]
    assert paths(tasks=[{"name": "a", "sensor": {"kind": "time", "targetTime": "25:00"}}]) == [
        "spec.tasks[0].sensor.targetTime"
    ]
    assert not issues(tasks=[{"name": "a", "sensor": {"kind": "time", "targetTime": "06:30"}}])


def test_image_and_command_required_unless_set_by_defaults() -> None:
    assert sorted(paths(tasks=[{"name": "a"}])) == ["spec.tasks[0].command", "spec.tasks[0].image"]
    assert not issues(defaults={"image": "x", "command": ["y"]}, tasks=[{"name": "a"}])


def test_pool_slots_need_a_pool_and_notifications_need_a_target() -> None:
    assert paths(tasks=[task("a", poolSlots=2)]) == ["spec.tasks[0].poolSlots"]
    assert paths(tasks=[task("a", notifications=[{"name": "n", "events": ["failure"]}])]) == [
        "spec.tasks[0].notifications[0]"
    ]
    assert paths(tasks=[task("a")], notifications=[{"name": "n", "events": ["failure"]}]) == [
        "spec.notifications[0]"
    ]


def test_schema_errors_have_field_paths() -> None:
    found = issues(tasks=[task("a", retries=-1, triggerRule="bogus", colour="red")])
    assert sorted(i.path for i in found) == [
        "spec.tasks[0].colour",
        "spec.tasks[0].retries",
        "spec.tasks[0].triggerRule",
    ]
    assert any("spelling" in i.message for i in found)


def test_bad_name() -> None:
    assert paths(tasks=[task("has.dot")]) == ["spec.tasks[0].name"]


def test_every_problem_reported_at_once() -> None:
    found = issues(
        schedule="nope",
        tasks=[
            task("a", "missing"),
            task("b", retryDelay="x"),
            task("c", command=["{{ tasks.b.outputs.x }}"]),
        ],
    )
    assert {i.path for i in found} >= {
        "spec.schedule",
        "spec.tasks[0].dependsOn[0]",
        "spec.tasks[1].retryDelay",
        "spec.tasks[2].command[0]",
    }


# -- a big valid manifest ----
def big_manifest() -> dict[str, Any]:
    regions = ["eu", "us", "ap", "sa"]
    return {
        "schedule": "0 2 * * *",
        "timezone": "Europe/Berlin",
        "startDate": "2026-01-01",
        "runTimeout": "6h",
        "sla": "4h",
        "params": {"full": {"type": "boolean", "default": False}},
        "defaults": {
            "image": "python:3.12",
            "retries": 2,
            "retryDelay": "30s",
            "retryExponentialBackoff": True,
            "maxRetryDelay": "10m",
        },
        "notifications": [{"name": "ops", "events": ["failure"], "webhook": {"url": "http://x"}}],
        "templates": [
            {
                "name": "etl",
                "inputs": [{"name": "region"}],
                "tasks": [
                    task("extract", command=["extract", "{{ inputs.region }}", "{{ ds }}"]),
                    task(
                        "transform",
                        "extract",
                        command=["transform", "{{ tasks.extract.outputs.rows }}"],
                    ),
                    task("load", "transform", pool="db", poolSlots=2),
                ],
            },
            {"name": "notify", "task": {"command": ["notify", "{{ run_id }}"]}},
        ],
        "tasks": [
            task("start", sensor={"kind": "command", "mode": "reschedule", "timeout": "1h"}),
            task("pick", "start", branch=True, branchTargets=regions),
            task(
                "report",
                *regions,
                triggerRule="none_failed_min_one_success",
                command=["report", "{{ tasks.eu.load.outputs.n | default(0) }}"],
            ),
            task("check", "report", shortCircuit=True),
            task("files", "check"),
            task(
                "per-file",
                "files",
                expand={"param": "tasks.files.outputs.list", "maxParallel": 4},
                command=["process", "{{ item }}", "{{ map_index }}"],
            ),
            {"name": "done", "dependsOn": ["per-file"], "template": {"name": "notify"}},
            task("cleanup", "done", triggerRule="all_done", when="params.full"),
        ],
        "groups": [
            {"name": r, "dependsOn": ["pick"], "template": {"name": "etl", "inputs": {"region": r}}}
            for r in regions
        ],
    }


def test_a_big_valid_manifest_has_no_issues() -> None:
    model, plan, found = validate_document(doc(**big_manifest()))
    assert found == []
    assert plan is not None and model is not None
    assert len(plan.tasks) == 8 + 3 * 4
    assert set(plan.task("eu.extract").upstream) == {"pick"}
    assert set(plan.task("report").upstream) == {f"{r}.load" for r in ["eu", "us", "ap", "sa"]}
