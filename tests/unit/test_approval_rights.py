"""Approvals (the webhook signs, the operator verifies) and the rights a spec needs."""

from __future__ import annotations

import json
from typing import Any

import pytest
from helpers_engine import task

from kascade.api.pipeline import PipelineSpec
from kascade.controller import approval, pod_preview, pod_security, rights
from kascade.engine.compile import compile_or_raise

KEY = b"k" * 32
SPEC = {"tasks": [task("a")]}


def test_a_signed_spec_verifies_only_in_its_namespace_and_unchanged() -> None:
    value = approval.sign(KEY, "team-a", SPEC, "alice", ["secret:db"])
    assert approval.problem(KEY, "team-a", SPEC, value) is None
    # key order is not a change
    assert approval.verifies(KEY, "team-a", json.loads(json.dumps(SPEC, sort_keys=True)), value)
    assert "changed after alice" in str(approval.problem(KEY, "team-a", {"tasks": []}, value))
    assert "signature" in str(approval.problem(KEY, "team-b", SPEC, value))
    assert "signature" in str(approval.problem(b"x" * 32, "team-a", SPEC, value))


def test_forged_or_missing_annotations_are_refused() -> None:
    value = json.loads(approval.sign(KEY, "ns", SPEC, "bob", []))
    value["by"] = "cluster-admin"  # a user edits who approved it
    assert "signature" in str(approval.problem(KEY, "ns", SPEC, json.dumps(value)))
    assert "not one the admission webhook wrote" in str(approval.problem(KEY, "ns", SPEC, "{}"))
    assert "not approved" in str(approval.problem(KEY, "ns", SPEC, None))


def test_policy_off_runs_anything_and_required_needs_a_key(tmp_path: Any) -> None:
    assert approval.Policy(required=False, key=None).problem("ns", SPEC, {}) is None
    assert "no approval key" in str(
        approval.Policy(required=True, key=None).problem("ns", SPEC, {})
    )
    short = tmp_path / "short"
    short.write_text("abc")
    with pytest.raises(ValueError, match="at least 32 bytes"):
        approval.read_key(short)


def test_runs_carry_their_pipelines_approval() -> None:
    pipeline = {"metadata": {"annotations": {approval.ANNOTATION: "v"}}}
    assert approval.carried(pipeline) == {"annotations": {approval.ANNOTATION: "v"}}
    assert approval.carried({"metadata": {}}) == {}


def needs(**spec: Any) -> dict[str, rights.Need]:
    model = PipelineSpec.model_validate(spec)
    return {n.grant: n for n in rights.needs(compile_or_raise(model, "p"), model)}


def test_a_plain_pipeline_needs_nothing() -> None:
    assert needs(tasks=[task("a"), task("b", "a", serviceAccountName="default")]) == {}


def test_every_reference_is_a_need_with_its_path() -> None:
    found = needs(
        connections=[{"name": "db", "secret": "db-conn"}],
        variables=[{"configMap": "vars"}],
        tasks=[
            task(
                "a",
                serviceAccountName="admin",
                env=[
                    {"name": "P", "valueFrom": {"secretKeyRef": {"name": "pw", "key": "k"}}},
                    {"name": "C", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k"}}},
                ],
                envFrom=[{"secretRef": {"name": "all"}}],
                volumes=[
                    {"name": "s", "secret": {"secretName": "files"}},
                    {"name": "d", "persistentVolumeClaim": {"claimName": "data"}},
                    {"name": "p", "projected": {"sources": [{"configMap": {"name": "proj"}}]}},
                ],
                notifications=[
                    {
                        "name": "n",
                        "events": ["failure"],
                        "webhook": {"urlFrom": {"name": "hook", "key": "url"}},
                    }
                ],
            )
        ],
    )
    assert set(found) == {
        "secret:db-conn",
        "configmap:vars",
        "serviceaccount:admin",
        "secret:pw",
        "configmap:cm",
        "secret:all",
        "secret:files",
        "persistentvolumeclaim:data",
        "configmap:proj",
        "secret:hook",
    }
    account = found["serviceaccount:admin"]
    assert account.path == "spec.tasks[0].serviceAccountName"
    assert [str(c) for c in account.checks] == ["create pods", "use serviceaccounts/admin"]
    assert found["secret:pw"].path == "spec.tasks[0].env[0].valueFrom.secretKeyRef"
    assert [str(c) for c in found["secret:pw"].checks] == ["get secrets/pw"]
    assert found["secret:db-conn"].path == "spec.connections[0].secret"


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"securityContext": {"privileged": True}}, "privileged"),
        ({"securityContext": {"runAsUser": 0, "runAsNonRoot": False}}, "runAsUser: 0"),
        ({"securityContext": {"capabilities": {"add": ["SYS_ADMIN"]}}}, "SYS_ADMIN"),
        ({"securityContext": {"allowPrivilegeEscalation": True}}, "allowPrivilegeEscalation"),
        ({"securityContext": {"seccompProfile": {"type": "Unconfined"}}}, "Unconfined"),
        ({"volumes": [{"name": "root", "hostPath": {"path": "/"}}]}, "hostPath"),
    ],
)
def test_loosening_the_restricted_context_needs_create_pods(
    fields: dict[str, Any], words: str
) -> None:
    found = needs(tasks=[task("a", **fields)])
    assert list(found) == ["pods:elevated"]
    assert [str(c) for c in found["pods:elevated"].checks] == ["create pods"]
    assert words in found["pods:elevated"].why


def test_the_operators_own_pods_are_restricted() -> None:
    model = PipelineSpec.model_validate(
        {
            "tasks": [
                task("a"),
                task("s", sensor={"kind": "file", "path": "/x"}),
                task("m", expand={"items": [1, 2]}, securityContext={"runAsUser": 1000}),
            ],
            "notifications": [
                {"name": "h", "events": ["failure"], "hook": {"image": "x", "command": ["y"]}}
            ],
        }
    )
    plan = compile_or_raise(model, "p")
    pods = pod_preview.previews(plan, model, "ns")
    assert len(pods) == 3  # the file sensor's pod has the shape of task a
    for preview in pods:
        assert pod_security.violations(preview.pod) == [], preview.path


def test_pod_field_errors_map_back_to_the_manifest() -> None:
    model = PipelineSpec.model_validate(
        {
            "variables": [{"configMap": "v"}],
            "connections": [{"name": "db", "secret": "s"}],
            "tasks": [
                task(
                    "a",
                    env=[{"name": "GOOD", "value": "1"}, {"name": "BAD NAME", "value": "2"}],
                    envFrom=[{"configMapRef": {"name": "x"}}],
                )
            ],
        }
    )
    preview = pod_preview.previews(compile_or_raise(model, "p"), model, "ns")[0]
    env = preview.pod["spec"]["containers"][0]["env"]
    bad = next(i for i, e in enumerate(env) if e["name"] == "BAD NAME")
    where = pod_preview.manifest_path(preview, f"spec.containers[0].env[{bad}].name", model)
    assert where == "spec.tasks[0].env[1].name"
    # envFrom in the pod: the variables, the connections, then the task's own.
    assert pod_preview.manifest_path(preview, "spec.containers[0].envFrom[0]", model) == (
        "spec.variables[0]"
    )
    assert pod_preview.manifest_path(preview, "spec.containers[0].envFrom[1]", model) == (
        "spec.connections[0]"
    )
    assert (
        pod_preview.manifest_path(preview, "spec.containers[0].envFrom[2].configMapRef", model)
        == "spec.tasks[0].envFrom[0].configMapRef"
    )
    assert pod_preview.manifest_path(preview, "spec.volumes[0].name", model) == (
        "spec.tasks[0].volumes[0].name"
    )
    assert pod_preview.manifest_path(preview, "spec.containers[0].resources", model) == (
        "spec.tasks[0].resources"
    )


def test_tasks_that_differ_only_in_commands_share_one_dry_run() -> None:
    model = PipelineSpec.model_validate(
        {"tasks": [task(f"t{i}", command=["echo", str(i)]) for i in range(50)]}
    )
    assert len(pod_preview.previews(compile_or_raise(model, "p"), model, "ns")) == 1


def test_secret_values_are_masked_in_termination_messages() -> None:
    from kascade.controller.masking import MASK, SecretMasker

    secrets = {"db": {"TOKEN": 's3cr"et-1', "USER": "etl"}, "files": {"cert": "-----BEGIN X"}}
    reads: list[str] = []

    def read(namespace: str, name: str) -> dict[str, str] | None:
        reads.append(name)
        return secrets.get(name)

    message = 'token=s3cr"et-1\n{"also": "s3cr\\"et-1"}\nuser=etl\ncert=-----BEGIN X'
    pod = {
        "metadata": {"namespace": "ns"},
        "spec": {
            "containers": [
                {
                    "env": [
                        {"name": "T", "valueFrom": {"secretKeyRef": {"name": "db", "key": "TOKEN"}}}
                    ],
                    "envFrom": [{"secretRef": {"name": "db"}}],
                }
            ],
            "volumes": [{"name": "v", "secret": {"secretName": "files"}}],
        },
        "status": {
            "containerStatuses": [{"state": {"terminated": {"exitCode": 0, "message": message}}}]
        },
    }
    masker = SecretMasker(read)
    masked = masker.mask_pod(pod)
    text = masked["status"]["containerStatuses"][0]["state"]["terminated"]["message"]
    assert text == f'token={MASK}\n{{"also": "{MASK}"}}\nuser=etl\ncert={MASK}'  # "etl": too short
    assert pod["status"]["containerStatuses"][0]["state"]["terminated"]["message"] == message
    masker.mask_pod(pod)
    assert sorted(reads) == ["db", "files"]  # cached
    plain = {"metadata": {}, "spec": {"containers": [{}]}, "status": {}}
    assert masker.mask_pod(plain) is plain


def test_a_pipelines_series_exist_at_zero_and_go_with_it() -> None:
    from prometheus_client import REGISTRY

    from kascade import metrics

    body = {
        "metadata": {"namespace": "zero-ns", "name": "zp", "generation": 1},
        "spec": {
            "sla": "1h",
            "tasks": [task("a"), task("b", "a", sla="5m")],
            "notifications": [
                {"name": "n", "events": ["failure"], "webhook": {"url": "https://x.io"}}
            ],
        },
    }
    metrics.seen_pipeline(body)

    def value(name: str, **labels: str) -> float | None:
        return REGISTRY.get_sample_value(name, {"namespace": "zero-ns", "pipeline": "zp", **labels})

    assert value("kascade_runs_started_total", trigger="scheduled") == 0.0
    assert value("kascade_runs_finished_total", state="failed") == 0.0
    assert value("kascade_task_attempts_total", task="b", state="success") == 0.0
    assert value("kascade_task_failures_total", reason="Timeout") == 0.0
    assert value("kascade_sla_misses_total", task="b") == 0.0
    assert value("kascade_sla_misses_total", task="") == 0.0
    assert value("kascade_sla_misses_total", task="a") is None  # no SLA, no series
    assert value("kascade_notifications_total", event="failure", outcome="refused") == 0.0
    assert value("kascade_run_duration_seconds_count", state="success") == 0.0
    metrics.attempt_ended("zero-ns", "zp", "a", False, "SomethingNew")
    assert value("kascade_task_failures_total", reason="Other") == 1.0
    metrics.forget_pipeline("zero-ns", "zp")
    assert value("kascade_runs_started_total", trigger="scheduled") is None


def test_operator_log_lines_name_their_object() -> None:
    import logging

    from kascade.controller.logs import ObjectLines

    def record(msg: str, level: int = logging.INFO, **extra: object) -> logging.LogRecord:
        rec = logging.LogRecord("kopf.objects", level, __file__, 1, msg, (), None)
        rec.__dict__.update(extra)
        return rec

    keep = ObjectLines()
    ref = {"kind": "PipelineRun", "namespace": "team", "name": "r1"}
    assert not keep.filter(record("Handler 'run_event' succeeded.", k8s_ref=ref))  # debug only
    assert not keep.filter(record("Webhook 'admit-pipeline' failed permanently: bad", 40))
    failed = record("Handler 'run_event' failed with an exception.", 40, k8s_ref=ref)
    assert keep.filter(failed)
    assert (
        failed.getMessage() == "PipelineRun team/r1: Handler 'run_event' failed with an exception."
    )
    other = logging.LogRecord(
        "kascade.x", logging.INFO, __file__, 1, "Handler 'x' succeeded.", (), None
    )
    assert keep.filter(other)
