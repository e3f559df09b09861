"""Values that pass the schema but could never work are rejected with their field path."""

from __future__ import annotations

from typing import Any

import pytest
from helpers_engine import doc, task

from kascade.engine.validation import validate_document


def found(**spec: Any) -> list[tuple[str, str]]:
    _model, plan, issues = validate_document(doc(**spec))
    assert (plan is None) == bool(issues)
    return [(i.path, i.message) for i in issues]


def paths(**spec: Any) -> list[str]:
    return [path for path, _ in found(**spec)]


@pytest.mark.parametrize(
    ("fields", "path"),
    [
        ({"timeout": "0s"}, "spec.tasks[0].timeout"),
        ({"startTimeout": "0"}, "spec.tasks[0].startTimeout"),
        ({"workingDir": "data/in"}, "spec.tasks[0].workingDir"),
        (
            {"sensor": {"kind": "http", "url": "not a url", "pokeInterval": "1m"}},
            "spec.tasks[0].sensor.url",
        ),
        (
            {"sensor": {"kind": "http", "url": "ftp://host/x"}},
            "spec.tasks[0].sensor.url",
        ),
        (
            {"sensor": {"kind": "file", "path": "/x", "pokeInterval": "0s"}},
            "spec.tasks[0].sensor.pokeInterval",
        ),
        (
            {"sensor": {"kind": "file", "path": "/x", "timeout": "0m"}},
            "spec.tasks[0].sensor.timeout",
        ),
        (
            {"notifications": [{"name": "n", "events": ["failure"], "webhook": {"url": "hooks"}}]},
            "spec.tasks[0].notifications[0].webhook.url",
        ),
        ({"expand": {"param": "params.regions"}}, "spec.tasks[0].expand.param"),
    ],
)
def test_task_values_that_can_never_work(fields: dict[str, Any], path: str) -> None:
    assert paths(tasks=[task("a", **fields)]) == [path]


@pytest.mark.parametrize(
    "fields",
    [
        {"timeout": "1s", "workingDir": "/work"},
        {"workingDir": "{{ params.dir }}"},
        {"sensor": {"kind": "http", "url": "https://example.com/ready?d={{ ds }}"}},
        {"sensor": {"kind": "http", "url": "{{ params.endpoint }}"}},
        {"sensor": {"kind": "http", "url": "http://{{ params.host }}:8080/"}},
    ],
)
def test_good_values_pass(fields: dict[str, Any]) -> None:
    assert found(tasks=[task("a", **fields)]) == []


def test_a_templated_url_with_a_wrong_scheme_is_caught() -> None:
    sensor = {"kind": "http", "url": "file:///{{ params.p }}"}
    assert paths(tasks=[task("a", sensor=sensor)]) == ["spec.tasks[0].sensor.url"]


def test_a_default_is_reported_once_where_it_is_written() -> None:
    issues = found(defaults={"timeout": "0s"}, tasks=[task("a"), task("b")])
    assert issues == [("spec.defaults.timeout", "'0s' must be more than zero")]


def test_values_inside_groups_and_templates() -> None:
    assert paths(
        groups=[{"name": "g", "defaults": {"workingDir": "rel"}, "tasks": [task("a")]}],
        templates=[{"name": "t", "task": {"image": "x", "command": ["y"], "timeout": "0s"}}],
    ) == ["spec.groups[0].defaults.workingDir", "spec.templates[0].task.timeout"]


def test_pipeline_level_values() -> None:
    assert paths(
        runTimeout="0s",
        notifications=[
            {"name": "n", "events": ["failure"], "webhook": {"url": "http:///path-only"}}
        ],
        tasks=[task("a")],
    ) == ["spec.runTimeout", "spec.notifications[0].webhook.url"]


@pytest.mark.parametrize(
    ("param", "path", "words"),
    [
        ({"type": "integer", "default": "3"}, "spec.params.p.default", "type integer"),
        ({"type": "string", "enum": ["a", "b"], "default": "c"}, "spec.params.p.default", "one of"),
        ({"type": "number", "minimum": 5, "default": 1}, "spec.params.p.default", ">= 5"),
        ({"type": "number", "maximum": 5, "default": 9}, "spec.params.p.default", "<= 5"),
        ({"type": "number", "minimum": 5, "maximum": 1}, "spec.params.p.minimum", "above"),
    ],
)
def test_param_defaults_must_fit_their_own_declaration(
    param: dict[str, Any], path: str, words: str
) -> None:
    issues = found(params={"p": param}, tasks=[task("a")])
    assert [p for p, _ in issues] == [path]
    assert words in issues[0][1]


def test_expand_of_a_declared_param_is_fine() -> None:
    params = {"regions": {"type": "array", "default": ["eu"]}}
    assert found(params=params, tasks=[task("a", expand={"param": "params.regions"})]) == []
