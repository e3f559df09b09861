"""Every example manifest is a valid Pipeline, and expected.yaml describes each one.

The examples are user documentation: a typo in one (a misspelt field, an unknown
task in dependsOn, a broken ``{{ }}``) must fail here, not in front of a user.
The tests that *run* the examples compare against manifests/examples/expected.yaml;
these tests keep that file in step with the manifests.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from kascade.api.pipeline import Template
from kascade.api.resources import EXPECT_ANNOTATION, Pipeline
from kascade.engine import task_templates
from kascade.engine.compile import compile_spec
from kascade.engine.expressions import parse
from kascade.engine.templating import check

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "manifests" / "examples"
EXPECTED = EXAMPLES / "expected.yaml"
GENERATOR = EXAMPLES / "customer-pipelines" / "generate.py"
#: YAML files under manifests/examples that are not Pipelines.
NOT_PIPELINES = {"customers.yaml", "expected.yaml"}
STATES = {"success", "failed", "skipped", "upstream_failed"}
MAPPED = re.compile(r"^(?P<task>.+)\[(?P<index>\d+)\]$")


def example_files() -> list[Path]:
    return sorted(p for p in EXAMPLES.rglob("*.yaml") if p.name not in NOT_PIPELINES)


def rel(path: Path) -> str:
    return path.relative_to(EXAMPLES).as_posix()


def load(path: Path) -> list[Pipeline]:
    """The file's Pipelines, the one its case runs first (``pipeline:`` in expected.yaml)."""
    with path.open() as f:
        docs = [doc for doc in yaml.safe_load_all(f) if doc is not None]
    pipelines = [Pipeline.model_validate(doc) for doc in docs if doc.get("kind") == "Pipeline"]
    wanted = expected().get(rel(path), {}).get("pipeline")
    return sorted(pipelines, key=lambda p: p.name != wanted) if wanted else pipelines


def shared(path: Path) -> dict[str, Template]:
    """The file's TaskTemplates (a pipeline may use them, as in its namespace)."""
    with path.open() as f:
        docs = [doc for doc in yaml.safe_load_all(f) if doc is not None]
    found, problems = task_templates.from_manifests(docs)
    assert not problems, problems
    return found


def expected() -> dict[str, Any]:
    with EXPECTED.open() as f:
        data = yaml.safe_load(f)
    assert isinstance(data, dict)
    return data


def cases(entry: dict[str, Any]) -> list[dict[str, Any]]:
    return [entry, *(entry.get("variants") or [])]


def strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return []


def test_there_are_examples() -> None:
    names = {rel(p) for p in example_files()}
    assert "hello-world.yaml" in names
    assert len(names) >= 12


@pytest.mark.parametrize("path", example_files(), ids=rel)
def test_example_parses_as_pipeline(path: Path) -> None:
    pipelines = load(path)
    named = expected()[rel(path)].get("pipeline")
    # One Pipeline per file, unless the case names the one to run (it triggers the others).
    assert len(pipelines) == 1 or pipelines[0].name == named, "one Pipeline per file"
    for pipeline in pipelines:
        assert pipeline.metadata.name, "metadata.name is required"
        assert pipeline.spec.description, "every example says what it does"
    assert path.read_text().startswith("#"), "a top comment names the Airflow concept(s) shown"


def test_metadata_names_are_unique() -> None:
    seen: dict[str, str] = {}
    for path in example_files():
        for pipeline in load(path):
            name = pipeline.name
            assert name not in seen, f"{rel(path)} and {seen[name]} are both named {name!r}"
            seen[name] = rel(path)


@pytest.mark.parametrize("path", example_files(), ids=rel)
def test_example_compiles_and_templates_parse(path: Path) -> None:
    for pipeline in load(path):
        compiles_and_templates_parse(pipeline, shared(path))


def compiles_and_templates_parse(pipeline: Pipeline, templates: dict[str, Template]) -> None:
    plan, issues = compile_spec(pipeline.spec, pipeline.name, templates)
    assert not issues, issues
    spec = pipeline.spec.model_dump(by_alias=True, exclude_none=True)
    errors = [e for text in strings(spec) for e in check(text)]
    assert not errors, errors
    assert plan is not None
    for task in plan.tasks:  # bare expressions (no braces) must parse too
        if task.spec.when is not None:
            parse(task.spec.when)
        if task.spec.expand is not None and task.spec.expand.param is not None:
            parse(task.spec.expand.param)


def test_hello_world_is_exactly_as_documented() -> None:
    spec = load(EXAMPLES / "hello-world.yaml")[0].spec
    assert spec.schedule == "@daily"
    tasks = {t.name: t for t in spec.tasks or []}
    assert list(tasks) == ["say-hello", "print-date"]
    assert tasks["say-hello"].image == "busybox:1.36"
    assert tasks["say-hello"].command == ["echo", "Hello from Kascade"]
    assert tasks["print-date"].image == "busybox:1.36"
    assert tasks["print-date"].command == ["date"]
    assert tasks["print-date"].depends_on == ["say-hello"]


def test_expected_covers_exactly_the_examples() -> None:
    assert set(expected()) == {rel(p) for p in example_files()}


@pytest.mark.parametrize("path", example_files(), ids=rel)
def test_expected_states_name_every_task(path: Path) -> None:
    pipeline = load(path)[0]
    plan, issues = compile_spec(pipeline.spec, pipeline.name, shared(path))
    assert plan is not None, issues
    ids = {t.id for t in plan.tasks}
    mapped = {t.id for t in plan.tasks if t.spec.expand is not None}
    for case in cases(expected()[rel(path)]):
        assert case["phase"] in {"success", "failed"}
        states = case["tasks"]
        assert set(states.values()) <= STATES, states
        indices: dict[str, list[int]] = {}
        plain = set()
        for key in states:
            m = MAPPED.match(key)
            if m:
                indices.setdefault(m["task"], []).append(int(m["index"]))
            else:
                plain.add(key)
        assert plain == ids - mapped, "every unmapped task, by qualified id"
        assert set(indices) == mapped, "mapped tasks appear as task[0], task[1], ..."
        for task, found in indices.items():
            assert sorted(found) == list(range(len(found))), f"{task}: indices from 0, no gaps"
        for key in case.get("attempts") or {}:
            assert key in states


@pytest.mark.parametrize("path", example_files(), ids=rel)
def test_expect_annotation_matches_expected_phase(path: Path) -> None:
    pipeline = load(path)[0]
    annotations = pipeline.metadata.annotations or {}
    meant_to_fail = annotations.get(EXPECT_ANNOTATION) == "failed"
    for case in cases(expected()[rel(path)]):
        assert (case["phase"] == "failed") == meant_to_fail


def test_generated_customer_pipelines_are_up_to_date() -> None:
    result = subprocess.run(
        [sys.executable, str(GENERATOR), "--check"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, (
        f"run `python {GENERATOR.relative_to(ROOT)}` and commit:\n{result.stderr}"
    )
