"""The TaskTemplate kind: shared templates used by reference, pinned by the runs that use them.

The compiler takes them (``template.kind: TaskTemplate``) from the run file locally, from
the namespace on the cluster, and from the run's own copies once the run has started; the
webhook checks the author may read each one and may do what its fields ask; a run whose
pinned TaskTemplate asks for more than its Pipeline's approval covers does not run.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path
from typing import Any

import yaml
from fake_kube import FakeKube
from helpers_engine import spec
from test_admission_review import KEY, Answers, pipeline

import sdk_support
from kascade.api.pipeline import Template
from kascade.controller import approval
from kascade.controller.review import Request, Reviewer
from kascade.controller.world import World
from kascade.engine import task_templates
from kascade.engine.compile import compile_spec
from kascade.engine.validation import validate_spec
from kascade.kube.access import UserInfo

ROOT = Path(__file__).resolve().parents[2]
FETCH: dict[str, Any] = {
    "apiVersion": "kascade.io/v1alpha1",
    "kind": "TaskTemplate",
    "metadata": {"name": "fetch"},
    "spec": {
        "description": "GET a URL",
        "inputs": [{"name": "url"}],
        "task": {"image": "curl:8", "command": ["curl", "-fsS", "{{ inputs.url }}"], "retries": 2},
    },
}
USE = {
    "name": "get",
    "template": {"kind": "TaskTemplate", "name": "fetch", "inputs": {"url": "https://x/{{ ds }}"}},
}


def _shared(*docs: dict[str, Any]) -> dict[str, Template]:
    shared, problems = task_templates.from_manifests(list(docs))
    assert not problems
    return shared


def test_a_pipeline_uses_a_task_template_by_reference() -> None:
    plan, issues = compile_spec(spec([USE]), "p", _shared(FETCH))
    assert plan is not None and issues == []
    get = plan.task("get")
    assert get.spec.command == ["curl", "-fsS", "{{ inputs.url }}"] and get.retries == 2
    assert get.sources["command"] == "tasktemplates/fetch.spec.task"
    _, missing = compile_spec(spec([USE]), "p", {})
    assert [(i.path, i.message) for i in missing] == [
        (
            "spec.tasks[0].template.name",
            "no TaskTemplate 'fetch' in the namespace (TaskTemplates: none found)",
        )
    ]
    local = spec([{"name": "get", "template": {"name": "fetch"}}])
    _, unknown = compile_spec(local, "p", _shared(FETCH))  # kind Template: spec.templates only
    assert "unknown template 'fetch'" in unknown[0].message


def test_problems_inside_a_task_template_point_into_it() -> None:
    bad = {**FETCH, "spec": {**FETCH["spec"], "task": {"command": ["curl", "{{ nope }}"]}}}
    _, issues = validate_spec(spec([USE], defaults={"image": "busybox"}), "p", _shared(bad))
    assert [(i.path, i.message) for i in issues] == [
        ("tasktemplates/fetch.spec.task.command[1]", "unknown template variable 'nope'")
    ]
    assert [(i.path, i.message) for i in task_templates.validate(bad)] == [
        ("spec.task.command[1]", "unknown template variable 'nope'")
    ]
    assert task_templates.validate(FETCH) == []
    neither = {**FETCH, "spec": {"inputs": []}}
    assert [i.message for i in task_templates.validate(neither)] == [
        "a TaskTemplate sets exactly one of task, or tasks/groups"
    ]


def test_used_names_every_task_template_a_spec_uses() -> None:
    s = spec(
        [USE],
        groups=[
            {"name": "g", "template": {"kind": "TaskTemplate", "name": "etl"}},
            {
                "name": "h",
                "tasks": [{"name": "t", "template": {"kind": "TaskTemplate", "name": "x"}}],
            },
        ],
        templates=[{"name": "local", "task": {"template": {"kind": "TaskTemplate", "name": "y"}}}],
    )
    assert task_templates.used(s) == {"fetch", "etl", "x", "y"}


def test_kascade_run_and_validate_take_task_templates_from_the_files(tmp_path: Path) -> None:
    local = {**FETCH, "spec": {**FETCH["spec"], "task": {"command": ["echo", "{{ inputs.url }}"]}}}
    pipe = {
        "apiVersion": "kascade.io/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": "uses"},
        "spec": {"defaults": {"image": "busybox"}, "tasks": [USE]},
    }
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump_all([local, pipe]))

    def kascade(*args: str) -> subprocess.CompletedProcess[str]:
        return sdk_support.kascade(*args, home=tmp_path)

    run = kascade("run", str(path), "--output", "json", "--logical-date", "2024-01-15")
    record = json.loads(run.stdout)
    assert record["phase"] == "success", run.stderr
    log = tmp_path / "local-runs" / "uses" / record["runId"] / "logs" / "get" / "attempt-1.log"
    assert log.read_text() == "https://x/2024-01-15\n"
    checked = kascade("validate", str(path))
    assert checked.returncode == 0
    assert f"{path}: TaskTemplate fetch: OK" in checked.stdout
    alone = tmp_path / "alone.yaml"
    alone.write_text(yaml.safe_dump(pipe))
    refused = kascade("validate", str(alone))
    assert refused.returncode == 1 and "no TaskTemplate 'fetch' in the namespace" in refused.stdout
    together = kascade("validate", str(path), str(alone))  # a file's templates serve the others
    assert together.returncode == 0, together.stdout


# -- the operator --------------------------------------------------------------------------
PIPELINE_SPEC = {"defaults": {"image": "busybox:1.36"}, "tasks": [USE]}


def _setup(kube: FakeKube) -> None:
    kube.create("tasktemplates", "ns", {**FETCH, "metadata": {"name": "fetch", "namespace": "ns"}})
    kube.create(
        "pipelines",
        "ns",
        {
            "apiVersion": "kascade.io/v1alpha1",
            "kind": "Pipeline",
            "metadata": {"name": "p"},
            "spec": PIPELINE_SPEC,
        },
    )


def _run(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "kascade.io/v1alpha1",
        "kind": "PipelineRun",
        "metadata": {"name": name, "namespace": "ns", "generation": 1},
        "spec": {
            "pipelineRef": {"name": "p"},
            "pipelineSpec": PIPELINE_SPEC,
            "logicalDate": "2026-01-02T00:00:00Z",
        },
    }


def test_a_run_pins_the_task_templates_it_starts_with() -> None:
    kube = FakeKube()
    _setup(kube)

    async def scenario() -> None:
        world = World(kube, lambda *_: None)
        await world.on_task_template("ADDED", kube.get("tasktemplates", "ns", "fetch") or {})
        await world.on_pipeline("ADDED", kube.get("pipelines", "ns", "p") or {})
        created = kube.create("pipelineruns", "ns", _run("r1"))
        assert created is not None
        await world.on_run("ADDED", created)  # pins, and comes back with the watch event
        # The TaskTemplate changes before the run's watch event: the run keeps its copy.
        changed = kube.get("tasktemplates", "ns", "fetch") or {}
        changed["spec"]["task"]["command"] = ["wget", "{{ inputs.url }}"]
        changed["metadata"]["generation"] = 2
        kube.objects[("tasktemplates", "ns", "fetch")] = changed
        await world.on_task_template("MODIFIED", changed)
        await world.on_run("MODIFIED", kube.get("pipelineruns", "ns", "r1") or {})
        created = kube.create("pipelineruns", "ns", _run("r2"))
        assert created is not None
        await world.on_run("ADDED", created)
        await world.on_run("MODIFIED", kube.get("pipelineruns", "ns", "r2") or {})

    asyncio.run(scenario())
    pinned = (kube.get("pipelineruns", "ns", "r1") or {})["spec"]["taskTemplates"]
    assert [(p["name"], p["generation"]) for p in pinned] == [("fetch", 1)]
    first = kube.get("pods", "ns", "r1-get-a1")
    second = kube.get("pods", "ns", "r2-get-a1")
    assert first is not None and second is not None
    assert first["spec"]["containers"][0]["command"][0] == "curl"  # the version it started with
    assert second["spec"]["containers"][0]["command"][0] == "wget"  # the next run: the new one
    template = kube.get("tasktemplates", "ns", "fetch") or {}
    assert template["status"]["conditions"][0]["status"] == "True"
    p = kube.get("pipelines", "ns", "p") or {}
    assert p["status"]["conditions"][0]["status"] == "True", p["status"]


def test_a_run_whose_task_template_is_missing_fails_and_says_which() -> None:
    kube = FakeKube()
    created = kube.create("pipelineruns", "ns", _run("r"))
    assert created is not None
    asyncio.run(World(kube, lambda *_: None).on_run("ADDED", created))
    status = (kube.get("pipelineruns", "ns", "r") or {})["status"]
    assert status["phase"] == "failed"
    assert status["message"] == "TaskTemplate 'fetch' not found in namespace ns"


# -- admission and approvals ----------------------------------------------------------------
class TemplateAnswers(Answers):
    def task_template(self, namespace: str, name: str) -> dict[str, Any] | None:
        return {**FETCH, "metadata": {"name": name}} if name == "fetch" else None


def _review(answers: Answers, doc: dict[str, Any]) -> Any:
    req = Request(operation="CREATE", namespace="ns", user=UserInfo("alice"), new=doc)
    return asyncio.run(Reviewer(answers, KEY).pipeline(req))  # type: ignore[arg-type]


def test_the_author_must_be_allowed_to_read_the_task_templates_used() -> None:
    doc = pipeline([USE], defaults={"image": "busybox"})
    refused = _review(TemplateAnswers(), doc)
    assert refused.code == 403
    assert refused.problems == [
        "spec.tasks[0].template.name: uses TaskTemplate 'fetch', which needs get "
        "tasktemplates/fetch (user 'alice' may not)"
    ]
    allowed = _review(TemplateAnswers(grants={("get", "tasktemplates", "fetch")}), doc)
    assert allowed.allowed, allowed.problems
    parsed = approval.parse(allowed.approval)
    assert parsed is not None and parsed.grants == ("tasktemplate:fetch",)


def test_a_task_template_that_asks_for_more_after_approval_stops_its_runs() -> None:
    from kascade.controller import rights
    from kascade.engine.compile import compile_or_raise

    granted = approval.sign(KEY, "ns", PIPELINE_SPEC, "alice", ["tasktemplate:fetch"])
    meta = {"annotations": {approval.ANNOTATION: granted}}
    greedy = {
        **FETCH,
        "spec": {
            **FETCH["spec"],
            "task": {**FETCH["spec"]["task"], "envFrom": [{"secretRef": {"name": "db"}}]},
        },
    }
    s = spec([USE], defaults={"image": "busybox"})
    before = compile_or_raise(s, "p", _shared(FETCH))
    after = compile_or_raise(s, "p", _shared(greedy))
    approval.configure(approval.Policy(required=True, key=KEY))
    try:
        assert approval.grants_problem(meta, rights.needs(before, s)) is None
        problem = approval.grants_problem(meta, rights.needs(after, s))
    finally:
        approval.configure(approval.Policy(required=False, key=None))
    assert problem == (
        "its TaskTemplates ask for more than alice was approved for (tasktemplates/fetch."
        "spec.task.envFrom[0].secretRef: reads Secret 'db'); apply the Pipeline again to have "
        "it approved"
    )


def test_the_webhook_judges_a_task_template_on_its_own() -> None:
    bad = {
        **FETCH,
        "metadata": {"name": "fetch", "namespace": "ns"},
        "spec": {"task": {"command": ["{{ x }}"]}},
    }
    req = Request(operation="CREATE", namespace="ns", user=UserInfo("alice"), new=bad)
    verdict = asyncio.run(Reviewer(Answers(), KEY).task_template(req))  # type: ignore[arg-type]
    assert verdict.problems == ["spec.task.command[0]: unknown template variable 'x'"]
    ok = Request(operation="CREATE", namespace="ns", user=UserInfo("alice"), new=FETCH)
    assert asyncio.run(Reviewer(Answers(), KEY).task_template(ok)).allowed  # type: ignore[arg-type]
