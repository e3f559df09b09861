"""The compiled size of a pipeline is bounded before anything is expanded (issue 13).

A 2.6 KB manifest of 21 nested group templates, each used twice, expanded to 1,048,576
tasks: validate ran for two minutes and died at 3 GB, and the admission webhook runs
the same validation. The timeouts here guard against that hang on old code; the
speed targets live in ``make bench``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from kascade.controller import review
from kascade.engine.validation import validate_document


def doubling_templates(levels: int) -> dict[str, Any]:
    """``levels`` group templates, each using the one below twice: 2**(levels-1) tasks."""
    templates: list[dict[str, Any]] = [
        {"name": "g0", "tasks": [{"name": "t", "image": "busybox", "command": ["true"]}]}
    ]
    for i in range(1, levels):
        below = {"name": f"g{i - 1}"}
        templates.append(
            {
                "name": f"g{i}",
                "groups": [{"name": "a", "template": below}, {"name": "b", "template": below}],
            }
        )
    return {
        "apiVersion": "kascade.io/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": "bomb"},
        "spec": {
            "templates": templates,
            "groups": [{"name": "top", "template": {"name": f"g{levels - 1}"}}],
        },
    }


@pytest.mark.timeout(60)
def test_the_group_template_bomb_is_refused_before_it_expands() -> None:
    _, plan, issues = validate_document(doubling_templates(21))
    assert plan is None
    assert [str(i) for i in issues] == [
        "spec: the pipeline expands to 1,048,576 tasks, over the limit of 25,000 "
        "(group templates multiply: each use copies every task)"
    ]


def test_a_pipeline_at_a_lower_bound_compiles(monkeypatch: pytest.MonkeyPatch) -> None:
    from kascade.engine import bounds

    monkeypatch.setattr(bounds, "MAX_TASKS", 64)
    assert validate_document(doubling_templates(7))[2] == []  # 64 tasks
    [issue] = validate_document(doubling_templates(8))[2]  # 128
    assert "expands to 128 tasks, over the limit of 64" in issue.message


@pytest.mark.timeout(60)
def test_group_dependencies_that_multiply_into_too_many_edges() -> None:
    wide = [{"name": f"t{i}", "image": "busybox", "command": ["true"]} for i in range(800)]
    doc = {
        "metadata": {"name": "edges"},
        "spec": {
            "groups": [
                {"name": "a", "tasks": wide},
                {"name": "b", "dependsOn": ["a"], "tasks": wide},
            ]
        },
    }
    _, plan, issues = validate_document(doc)
    assert plan is None
    [issue] = issues
    assert issue.path == "spec.groups[1].dependsOn[0]"
    assert "more than 500,000 edges" in issue.message


@pytest.mark.timeout(60)
def test_a_long_chain_of_templates_is_too_deep_not_a_recursion_error() -> None:
    templates: list[dict[str, Any]] = [
        {"name": "g0", "tasks": [{"name": "t", "image": "busybox", "command": ["true"]}]}
    ]
    for i in range(1, 1500):
        templates.append(
            {"name": f"g{i}", "groups": [{"name": "a", "template": {"name": f"g{i - 1}"}}]}
        )
    doc = {
        "metadata": {"name": "deep"},
        "spec": {
            "templates": templates,
            "groups": [{"name": "top", "template": {"name": "g1499"}}],
        },
    }
    _, plan, issues = validate_document(doc)
    assert plan is None
    assert [str(i) for i in issues] == [
        "spec.groups: groups are nested more than 50 levels deep (templates included)"
    ]


def test_the_webhook_answers_within_its_deadline_whatever_validation_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The backstop behind the bounds: a validation slower than the webhook's budget is a
    refusal, not a timed-out webhook (the API server would then apply its failure policy)."""

    def slow(doc: dict[str, Any], shared: Any = None) -> Any:
        time.sleep(2)
        raise AssertionError("the review should not wait for this")

    monkeypatch.setattr(review, "VALIDATION_SECONDS", 0.2)
    monkeypatch.setattr(review, "validate_document", slow)
    reviewer = review.Reviewer(None, None)  # type: ignore[arg-type]
    req = review.Request(
        operation="CREATE",
        namespace="ns",
        user=None,  # type: ignore[arg-type]
        new={"metadata": {"name": "p"}, "spec": {"tasks": []}},
    )

    async def timed() -> tuple[review.Verdict, float]:
        started = time.monotonic()
        verdict = await reviewer.pipeline(req)
        return verdict, time.monotonic() - started

    verdict, took = asyncio.run(timed())
    assert took < 1.5
    assert not verdict.allowed
    assert verdict.problems == [
        "spec: validation took longer than 0.2 s, the time the webhook has to answer: "
        "the pipeline is too large to check; split it"
    ]


@pytest.mark.timeout(60)
def test_a_bomb_of_task_templates_is_refused_before_it_expands_too() -> None:
    """The namespace's TaskTemplates multiply like the spec's own group templates: a chain
    of them, each using the next twice, is measured with them before it is expanded."""
    from kascade.api.templates import TaskTemplateSpec

    doc = doubling_templates(21)
    shared = {}
    for raw in doc["spec"].pop("templates"):
        for group in raw.get("groups", []):
            group["template"]["kind"] = "TaskTemplate"
        body = {k: v for k, v in raw.items() if k != "name"}
        shared[raw["name"]] = TaskTemplateSpec.model_validate(body).as_template(raw["name"])
    doc["spec"]["groups"][0]["template"]["kind"] = "TaskTemplate"
    started = time.monotonic()
    _, plan, issues = validate_document(doc, shared)
    assert time.monotonic() - started < 5
    assert plan is None
    assert [str(i) for i in issues] == [
        "spec: the pipeline expands to 1,048,576 tasks, over the limit of 25,000 "
        "(group templates multiply: each use copies every task)"
    ]
