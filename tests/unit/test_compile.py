"""compile_spec: groups, templates and defaults resolved into a flat Plan."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from helpers_engine import plan, spec, task

from kascade.api.pipeline import TriggerRule
from kascade.engine.compile import Plan, compile_or_raise, compile_spec
from kascade.engine.errors import PipelineInvalid


def ups(p: Plan, task_id: str) -> set[str]:
    return set(p.task(task_id).upstream)


# -- groups ----
def etl_groups() -> Plan:
    return plan(
        [task("final", "transform")],
        groups=[
            {"name": "extract", "tasks": [task("a"), task("b"), task("c", "a")]},
            {
                "name": "transform",
                "dependsOn": ["extract"],
                "tasks": [task("x"), task("y", "x"), task("z")],
            },
        ],
    )


def test_group_to_group_wires_leaves_to_roots() -> None:
    """``extract >> transform``: every leaf of extract upstream of every root of transform."""
    p = etl_groups()
    leaves = {"extract.b", "extract.c"}
    assert ups(p, "transform.x") == leaves
    assert ups(p, "transform.z") == leaves
    assert ups(p, "transform.y") == {"transform.x"}  # not a root: no extra edges
    assert ups(p, "extract.c") == {"extract.a"}
    assert ups(p, "final") == {"transform.y", "transform.z"}


def test_qualified_ids_and_group_membership() -> None:
    p = etl_groups()
    assert [t.id for t in p.tasks] == [
        "final",
        "extract.a",
        "extract.b",
        "extract.c",
        "transform.x",
        "transform.y",
        "transform.z",
    ]
    assert set(p.groups["extract"]) == {"extract.a", "extract.b", "extract.c"}
    assert p.task("extract.a").group == "extract"
    assert p.task("final").group is None


def test_a_task_depending_on_a_qualified_task_of_another_group() -> None:
    p = plan(
        [task("after", "extract.a")],
        groups=[{"name": "extract", "tasks": [task("a"), task("b", "a")]}],
    )
    assert ups(p, "after") == {"extract.a"}


def test_nested_groups() -> None:
    p = plan(
        [task("end", "g"), task("mid", "g.h")],
        groups=[
            {
                "name": "g",
                "tasks": [task("a")],
                "groups": [{"name": "h", "dependsOn": ["a"], "tasks": [task("b"), task("c", "b")]}],
            }
        ],
    )
    assert ups(p, "g.h.b") == {"g.a"}
    assert ups(p, "g.h.c") == {"g.h.b"}
    assert ups(p, "end") == {"g.h.c"}  # the only leaf of g is inside h
    assert ups(p, "mid") == {"g.h.c"}
    assert set(p.groups["g"]) == {"g.a", "g.h.b", "g.h.c"}
    assert set(p.groups["g.h"]) == {"g.h.b", "g.h.c"}
    assert p.task("g.h.b").group == "g.h"


def test_group_depending_on_a_nested_group_sees_its_leaves() -> None:
    p = plan(
        [],
        groups=[
            {"name": "g", "groups": [{"name": "h", "tasks": [task("a"), task("b")]}]},
            {"name": "k", "dependsOn": ["g"], "tasks": [task("x")]},
        ],
    )
    assert ups(p, "k.x") == {"g.h.a", "g.h.b"}


def test_inner_name_shadows_outer_name() -> None:
    """dependsOn resolves in the innermost group first, then outwards."""
    p = plan(
        [task("a"), task("top", "a")],
        groups=[{"name": "g", "tasks": [task("a"), task("b", "a")]}],
    )
    assert ups(p, "g.b") == {"g.a"}
    assert ups(p, "top") == {"a"}


def test_nested_group_reaches_an_outer_sibling() -> None:
    p = plan(
        [task("root")],
        groups=[
            {
                "name": "g",
                "tasks": [task("a")],
                "groups": [{"name": "h", "tasks": [task("b", "a"), task("c", "root")]}],
            }
        ],
    )
    assert ups(p, "g.h.b") == {"g.a"}
    assert ups(p, "g.h.c") == {"root"}


def test_group_dependency_on_a_task_fans_out_to_every_root() -> None:
    p = plan(
        [task("start")],
        groups=[
            {"name": "g", "dependsOn": ["start"], "tasks": [task("a"), task("b", "a"), task("c")]}
        ],
    )
    assert ups(p, "g.a") == {"start"} and ups(p, "g.c") == {"start"}
    assert ups(p, "g.b") == {"g.a"}


# -- templates ----
def test_task_template_fields_and_inputs() -> None:
    p = plan(
        [
            task("a", template={"name": "load", "inputs": {"table": "orders"}}),
            {"name": "b", "template": {"name": "load", "inputs": {"table": "users", "mode": "x"}}},
        ],
        defaults={"image": "img"},
        templates=[
            {
                "name": "load",
                "inputs": [{"name": "table"}, {"name": "mode", "default": "full"}],
                "task": {"command": ["load", "{{ inputs.table }}"], "retries": 4},
            }
        ],
    )
    assert dict(p.task("a").inputs) == {"table": "orders", "mode": "full"}
    assert dict(p.task("b").inputs) == {"table": "users", "mode": "x"}
    assert p.task("a").spec.command == ["true"]  # the task's own command wins
    assert p.task("b").spec.command == ["load", "{{ inputs.table }}"]
    assert p.task("b").retries == 4


def test_group_template_instantiated_twice() -> None:
    p = plan(
        [task("report", "eu", "us")],
        templates=[
            {
                "name": "etl",
                "inputs": [{"name": "region"}],
                "tasks": [task("extract"), task("load", "extract")],
            }
        ],
        groups=[
            {"name": "eu", "template": {"name": "etl", "inputs": {"region": "eu"}}},
            {"name": "us", "template": {"name": "etl", "inputs": {"region": "us"}}},
        ],
    )
    assert ups(p, "eu.load") == {"eu.extract"}
    assert ups(p, "us.load") == {"us.extract"}
    assert ups(p, "report") == {"eu.load", "us.load"}
    assert p.task("eu.extract").inputs["region"] == "eu"
    assert p.task("us.load").inputs["region"] == "us"


def test_group_template_plus_own_tasks() -> None:
    p = plan(
        [],
        templates=[{"name": "t", "tasks": [task("a")]}],
        groups=[{"name": "g", "template": {"name": "t"}, "tasks": [task("b", "a")]}],
    )
    assert ups(p, "g.b") == {"g.a"}


def test_missing_template_input_is_an_issue() -> None:
    _, found = compile_spec(
        spec(
            [],
            templates=[{"name": "t", "inputs": [{"name": "x"}], "tasks": [task("a")]}],
            groups=[{"name": "g", "template": {"name": "t"}}],
        )
    )
    assert [i.path for i in found] == ["spec.groups[0].template.inputs"]


# -- defaults layering ----
def layered() -> Plan:
    return plan(
        [task("top")],
        defaults={"retries": 1, "retryDelay": "1m", "image": "pipe", "priorityWeight": 2},
        templates=[{"name": "t", "task": {"retries": 3, "image": "tpl", "command": ["x"]}}],
        groups=[
            {
                "name": "g",
                "defaults": {"retries": 2, "image": "grp", "triggerRule": "all_done"},
                "tasks": [
                    {"name": "a", "command": ["x"]},
                    {"name": "b", "template": {"name": "t"}},
                    {"name": "c", "template": {"name": "t"}, "retries": 5},
                    {"name": "d", "template": {"name": "t"}, "retries": 0, "image": "own"},
                ],
                "groups": [
                    {
                        "name": "h",
                        "defaults": {"retryDelay": "7s"},
                        "tasks": [{"name": "e", "command": ["x"]}],
                    }
                ],
            }
        ],
    )


@pytest.mark.parametrize(
    ("task_id", "retries", "image"),
    [
        ("g.a", 2, "grp"),  # group over pipeline
        ("g.b", 3, "tpl"),  # template over group
        ("g.c", 5, "tpl"),  # task over template
        ("g.d", 0, "own"),  # an explicit 0 is still the task's own value
        ("g.h.e", 2, "grp"),  # nested group inherits the outer group's defaults
    ],
)
def test_defaults_layering(task_id: str, retries: int, image: str) -> None:
    t = layered().task(task_id)
    assert t.retries == retries
    assert t.spec.image == image


def test_defaults_layering_other_fields() -> None:
    p = layered()
    top = p.task("top")
    assert top.spec.image == "busybox:1.36"  # set on the task itself
    assert top.retries == 1 and top.retry_delay == timedelta(minutes=1)
    assert top.trigger_rule is TriggerRule.ALL_SUCCESS
    assert p.task("g.a").trigger_rule is TriggerRule.ALL_DONE
    assert p.task("g.h.e").retry_delay == timedelta(seconds=7)
    assert all(t.priority_weight == 2 for t in p.tasks)


def test_plain_defaults() -> None:
    t = plan([task("a")]).task("a")
    assert t.retries == 0
    assert t.retry_delay == timedelta(minutes=5)  # Airflow's default retry_delay
    assert t.trigger_rule is TriggerRule.ALL_SUCCESS
    assert t.priority_weight == 1 and t.pool is None and t.pool_slots == 1
    assert not t.retry_exponential_backoff and t.max_retry_delay is None


# -- the plan's graph ----
def test_order_is_topological() -> None:
    p = plan([task("c", "b"), task("b", "a"), task("a"), task("d")])
    pos = {p.tasks[i].id: n for n, i in enumerate(p.order)}
    assert pos["a"] < pos["b"] < pos["c"]
    assert sorted(pos) == ["a", "b", "c", "d"]


def test_priority_is_the_downstream_weight_sum() -> None:
    p = plan(
        [
            task("a", priorityWeight=5),
            task("b", "a", priorityWeight=3),
            task("c", "a"),
            task("d", "b", "c", priorityWeight=10),
        ]
    )
    prio = {t.id: p.priority[t.index] for t in p.tasks}
    assert prio == {"d": 10, "b": 13, "c": 11, "a": 5 + 3 + 1 + 10}


def test_is_upstream_is_transitive() -> None:
    p = plan([task("a"), task("b", "a"), task("c", "b"), task("x")])
    assert p.is_upstream("a", "c")
    assert not p.is_upstream("c", "a")
    assert not p.is_upstream("x", "c")


def test_durations_parsed() -> None:
    p = plan(
        [task("a", timeout="1h30m", sla="2h", maxRetryDelay="10m", startTimeout="90")],
        runTimeout="6h",
        sla="1d",
    )
    t = p.task("a")
    assert t.timeout == timedelta(hours=1, minutes=30)
    assert t.sla == timedelta(hours=2)
    assert t.max_retry_delay == timedelta(minutes=10)
    assert t.start_timeout == timedelta(seconds=90)
    assert p.run_timeout == timedelta(hours=6) and p.sla == timedelta(days=1)


def test_compile_or_raise_carries_every_issue() -> None:
    with pytest.raises(PipelineInvalid) as info:
        compile_or_raise(spec([task("a", "zz"), task("a")]))
    assert {i.path for i in info.value.issues} == {
        "spec.tasks[0].dependsOn[0]",
        "spec.tasks[1].name",
    }


def test_a_cycle_gives_no_plan() -> None:
    p, found = compile_spec(spec([task("a", "b"), task("b", "a")]))
    assert p is None
    assert "a -> b -> a" in found[0].message


@pytest.mark.parametrize("width", [1, 50])
def test_many_tasks_compile(width: int) -> None:
    tasks: list[dict[str, Any]] = [task("start")]
    tasks += [task(f"t{i}", "start") for i in range(width)]
    tasks.append(task("end", *[f"t{i}" for i in range(width)]))
    p = plan(tasks)
    assert p.priority[p.index["start"]] == width + 2
    assert len(ups(p, "end")) == width
