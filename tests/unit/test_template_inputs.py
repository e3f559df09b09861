"""Template inputs are rendered like the task's own fields (Airflow's ``template_fields``).

``inputs: {url: "{{ params.api }}/{{ ds }}"}`` given to a custom operator (a task template)
or a task group factory (a group template) reaches the task rendered for its attempt, with
params, macros, upstream outputs and a mapped instance's item; validation checks an
input's references like any templated field, at the path where the value was written.
"""

from __future__ import annotations

from typing import Any

from helpers_engine import plan, run, spec, task

from kascade.engine.decisions import Result
from kascade.engine.validation import validate_spec

FETCH = {
    "name": "fetch",
    "inputs": [{"name": "url"}, {"name": "day", "default": "{{ ds }}"}],
    "task": {"command": ["fetch", "{{ inputs.url }}", "{{ inputs.day }}"]},
}


def _launched(rec: Any, key: str) -> list[str]:
    (launch,) = rec.launched(key)
    return list(launch.spec.command or [])


def test_inputs_render_params_macros_and_upstream_outputs() -> None:
    p = plan(
        [
            task("ids", command=["true"]),
            {
                "name": "get",
                "image": "busybox",
                "dependsOn": ["ids"],
                "template": {
                    "name": "fetch",
                    "inputs": {"url": "{{ params.api }}/items/{{ tasks.ids.outputs.first }}"},
                },
            },
        ],
        params={"api": {"default": "https://api.example"}},
        templates=[FETCH],
    )
    rec = run(p, {"ids": Result(0, outputs={"first": 7})}, params={"api": "https://x.test"})
    assert _launched(rec, "get") == ["fetch", "https://x.test/items/7", "2026-01-01"]


def test_group_template_inputs_render_for_each_mapped_item_and_in_when() -> None:
    p = plan(
        [
            {
                "name": "each",
                "image": "busybox",
                "expand": {"items": ["eu", "us"]},
                "template": {"name": "fetch", "inputs": {"url": "https://{{ item }}.example"}},
                "when": "inputs.day == ds",
            }
        ],
        templates=[FETCH],
    )
    rec = run(p)
    assert _launched(rec, "each[0]")[1] == "https://eu.example"
    assert _launched(rec, "each[1]")[1] == "https://us.example"


def test_an_input_that_does_not_render_fails_the_attempt_and_names_the_input() -> None:
    p = plan(
        [
            task("ids"),
            {
                "name": "get",
                "image": "busybox",
                "dependsOn": ["ids"],
                "retries": 0,
                "template": {"name": "fetch", "inputs": {"url": "{{ tasks.ids.outputs.x }}"}},
            },
        ],
        templates=[FETCH],
    )
    rec = run(p, {"ids": Result(0, outputs={})})
    assert rec.states["get"].value == "failed"
    message = rec.engine.instances["get"].message or ""
    assert message.startswith("template: inputs.url: ")
    assert "tasks.ids.outputs.x" in message


def test_validation_judges_inputs_where_they_are_written() -> None:
    bad = spec(
        [
            task("a"),
            {
                "name": "b",
                "image": "busybox",
                "template": {
                    "name": "fetch",
                    "inputs": {"url": "{{ tasks.a.outputs.x }} {{ nope }} {{ inputs.day }}"},
                },
            },
        ],
        templates=[
            {**FETCH, "inputs": [{"name": "url"}, {"name": "day", "default": "{{ ds | oops("}]}
        ],
    )
    _, issues = validate_spec(bad, "p")
    found = {(i.path, i.message.split(" (")[0]) for i in issues}
    assert (
        "spec.tasks[1].template.inputs.url",
        "tasks.a is not upstream of 'b': add it to dependsOn",
    ) in found
    assert ("spec.tasks[1].template.inputs.url", "unknown template variable 'nope'") in found
    assert (
        "spec.tasks[1].template.inputs.url",
        "an input's value cannot use another input; give the value",
    ) in found
    assert any(path == "spec.templates[0].inputs[1].default" for path, _ in found)


def test_a_plain_input_value_is_passed_as_it_is() -> None:
    p = plan(
        [{"name": "b", "image": "busybox", "template": {"name": "fetch", "inputs": {"url": 42}}}],
        templates=[FETCH],
    )
    rec = run(p)
    assert _launched(rec, "b")[1] == "42"
