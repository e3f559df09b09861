"""Security on the real cluster: a pipeline author can never make the operator exceed their rights.

One `kascade operator` process serves its admission webhook to the real API server
(tests/e2e/security_support.py) and verifies approvals before running anything.
``author`` may only manage Pipelines and PipelineRuns; ``admin`` may do anything in
the namespace. Each test names the hole it closes (issue 9).
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from .conftest import kubeconfig_path, wait_until
from .operator_support import GROUP, VERSION, pipeline
from .security_support import ADMIN_RULES, AUTHOR_RULES, Secured, secured_operator

pytestmark = pytest.mark.e2e

APPROVAL = "kascade.io/approval"


@pytest.fixture(scope="module")
def sec(cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    tmp = tmp_path_factory.mktemp("security")
    with secured_operator(cluster, kubeconfig_path(), tmp) as secured:
        secured.user("author", AUTHOR_RULES)
        secured.user("admin", ADMIN_RULES)
        secured.cluster.core.create_namespaced_secret(
            secured.namespace,
            client.V1Secret(
                metadata=client.V1ObjectMeta(name="db"),
                string_data={"TOKEN": "s3cr3t-value-9f4e2c", "USER": "etl"},
            ),
        )
        secured.cluster.core.create_namespaced_service_account(
            secured.namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="etl"))
        )
        yield secured


def one_task(name: str, **fields: Any) -> dict[str, Any]:
    task = {"name": "t", "command": ["sh", "-c", "echo ok"], **fields}
    doc = pipeline(name, [task])
    doc["spec"]["suspend"] = True
    return doc


def approval_of(sec: Secured, name: str, namespace: str | None = None) -> dict[str, Any]:
    ns = namespace or sec.namespace
    body = sec.kas.custom.get_namespaced_custom_object(GROUP, VERSION, ns, "pipelines", name)
    return dict(json.loads(body["metadata"]["annotations"][APPROVAL]))


# -- 1. the confused deputy -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"serviceAccountName": "etl"}, "runs pods as ServiceAccount 'etl'"),
        ({"envFrom": [{"secretRef": {"name": "db"}}]}, "reads Secret 'db'"),
        (
            {
                "securityContext": {
                    "privileged": True,
                    "allowPrivilegeEscalation": True,
                    "capabilities": {"add": ["SYS_ADMIN"]},
                }
            },
            "privileged: true",
        ),
        (
            {
                "volumes": [{"name": "root", "hostPath": {"path": "/"}}],
                "volumeMounts": [{"name": "root", "mountPath": "/host"}],
            },
            "hostPath",
        ),
        ({"securityContext": {"runAsUser": 0, "runAsNonRoot": False}}, "runAsUser: 0"),
    ],
    ids=["service-account", "secret", "privileged", "host-path", "root"],
)
def test_an_author_cannot_make_pods_do_what_they_may_not(
    sec: Secured, fields: dict[str, Any], reason: str
) -> None:
    status, message = sec.refused("author", "pipelines", one_task("deputy", **fields))
    assert status == 403, message  # and the restricted namespace refuses the pod too (422)
    assert reason in message, message
    assert f"user 'system:serviceaccount:{sec.namespace}:author' may not" in message


def test_an_admin_may_and_the_approval_records_who_and_what(sec: Secured) -> None:
    doc = one_task(
        "approved",
        serviceAccountName="etl",
        env=[{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "db", "key": "TOKEN"}}}],
    )
    sec.create("admin", "pipelines", doc)
    record = approval_of(sec, "approved")
    assert record["by"] == f"system:serviceaccount:{sec.namespace}:admin"
    assert record["grants"] == ["secret:db", "serviceaccount:etl"]
    # The author may trigger the approved pipeline: the run carries its approval.
    name = sec.kas.create_run("approved")
    run = sec.kas.wait_run(name, timeout=120)
    assert run["status"]["phase"] == "success", run["status"]


def test_a_forged_approval_is_replaced_by_the_real_author(sec: Secured) -> None:
    admin_record = approval_of(sec, "approved")
    doc = one_task("forged")
    doc["metadata"]["annotations"] = {APPROVAL: json.dumps(admin_record)}
    sec.create("author", "pipelines", doc)
    assert approval_of(sec, "forged")["by"] == f"system:serviceaccount:{sec.namespace}:author"
    # A metadata-only update cannot change it either.
    api = sec.as_user("author")
    api.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        sec.namespace,
        "pipelines",
        "forged",
        {"metadata": {"annotations": {APPROVAL: json.dumps(admin_record), "team": "x"}}},
    )
    body = sec.kas.get("pipelines", "forged")
    assert body["metadata"]["annotations"]["team"] == "x"
    assert approval_of(sec, "forged")["by"].endswith(":author")


def test_a_spec_that_bypassed_the_webhook_does_not_run(sec: Secured) -> None:
    """The operator watches a namespace the webhook does not cover: nothing there is approved."""
    other = sec.other_namespace
    doc = one_task("unapproved", serviceAccountName="default")
    sec.kas.custom.create_namespaced_custom_object(GROUP, VERSION, other, "pipelines", doc)

    def condition() -> dict[str, Any] | None:
        body = sec.kas.custom.get_namespaced_custom_object(
            GROUP, VERSION, other, "pipelines", "unapproved"
        )
        conds = (body.get("status") or {}).get("conditions") or []
        return next((c for c in conds if c["type"] == "Valid"), None)

    valid = wait_until(condition, timeout=60, what="the Valid condition")
    assert valid["status"] == "False" and "not approved" in valid["message"], valid
    # An approval copied from another namespace does not verify there.
    copied = sec.kas.get("pipelines", "approved")
    run = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "PipelineRun",
        "metadata": {
            "name": "copied-approval",
            "annotations": {APPROVAL: copied["metadata"]["annotations"][APPROVAL]},
        },
        "spec": {"pipelineRef": {"name": "unapproved"}, "pipelineSpec": copied["spec"]},
    }
    sec.kas.custom.create_namespaced_custom_object(GROUP, VERSION, other, "pipelineruns", run)

    def phase() -> dict[str, Any] | None:
        body = sec.kas.custom.get_namespaced_custom_object(
            GROUP, VERSION, other, "pipelineruns", "copied-approval"
        )
        status = body.get("status") or {}
        return status if status.get("phase") in ("success", "failed") else None

    status = wait_until(phase, timeout=60, what="the copied-approval run to end")
    assert status["phase"] == "failed" and "not approved" in status["message"], status
    pods = sec.cluster.core.list_namespaced_pod(other).items
    assert pods == [], [p.metadata.name for p in pods]


# -- 3. every way in -----------------------------------------------------------------------
def run_body(
    name: str, ref: str, spec: dict[str, Any] | None = None, **fields: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "PipelineRun",
        "metadata": {"name": name},
        "spec": {"pipelineRef": {"name": ref}, **fields},
    }
    if spec is not None:
        body["spec"]["pipelineSpec"] = spec
    return body


def test_pipelineruns_are_admitted_too(sec: Secured) -> None:
    good = one_task("x")["spec"]
    status, message = sec.refused("author", "pipelineruns", run_body("r1", "missing", good))
    assert status == 422 and "spec.pipelineRef.name: pipeline 'missing' not found" in message
    cyclic = {
        "tasks": [
            {"name": "a", "image": "busybox:1.36", "command": ["true"], "dependsOn": ["b"]},
            {"name": "b", "image": "busybox:1.36", "command": ["true"], "dependsOn": ["a"]},
        ]
    }
    status, message = sec.refused("author", "pipelineruns", run_body("r2", "approved", cyclic))
    assert "spec.pipelineSpec.tasks[0].dependsOn: dependency cycle: a -> b -> a" in message
    typed = copy.deepcopy(good)
    typed["params"] = {"days": {"type": "integer", "default": 1}}
    status, message = sec.refused(
        "author", "pipelineruns", run_body("r3", "approved", typed, params={"days": "three"})
    )
    assert "spec.params.days: param 'days' must be of type integer" in message
    escalate = one_task("x", securityContext={"privileged": True})["spec"]
    status, message = sec.refused("author", "pipelineruns", run_body("r4", "approved", escalate))
    assert status == 403 and "privileged: true" in message


MALFORMED = [
    ({"env": [{"name": "A=B", "value": "1"}]}, "spec.tasks[0].env[0].name"),
    ({"volumeMounts": [{"name": "nope", "mountPath": "/x"}]}, "spec.tasks[0].volumeMounts[0].name"),
    ({"resources": {"limits": {"cpu": "lots"}}}, "spec.tasks[0].resources.limits.cpu"),
    ({"tolerations": [{"key": "k", "operator": "Maybe"}]}, "spec.tasks[0].tolerations[0].operator"),
    ({"securityContext": {"runAsUser": "abc"}}, "spec.tasks[0].securityContext.runAsUser"),
    ({"envFrom": [{"configMapRef": {}}]}, "spec.tasks[0].envFrom[0]"),
    ({"serviceAccountName": "no-such-account"}, 'serviceaccount "no-such-account" not found'),
    ({"workingDir": "relative/dir"}, "spec.tasks[0].workingDir"),
    ({"timeout": "0s"}, "spec.tasks[0].timeout"),
    (
        {"sensor": {"kind": "http", "url": "not a url", "pokeInterval": "0s"}},
        "spec.tasks[0].sensor.pokeInterval",
    ),
]


@pytest.mark.parametrize(("fields", "path"), MALFORMED, ids=[p for _, p in MALFORMED])
def test_malformed_pod_fields_are_rejected_at_apply_with_their_path(
    sec: Secured, fields: dict[str, Any], path: str
) -> None:
    status, message = sec.refused("admin", "pipelines", one_task("malformed", **fields))
    assert status in (400, 403, 422), message
    assert path in message, message


def test_large_pipelines_are_admitted_and_oversized_ones_named(sec: Secured) -> None:
    """Up to the 3 MiB the API server sends (an UPDATE carries old and new); 1 MiB specs."""
    script = "echo " + "x" * 700_000
    doc = one_task("large", script=script)
    doc["spec"]["tasks"][0].pop("command")
    sec.create("admin", "pipelines", doc)

    def replaced() -> dict[str, Any] | None:
        body = sec.kas.get("pipelines", "large")  # the operator writes its status meanwhile
        body["spec"]["tasks"][0]["script"] = script + " y"
        try:
            return dict(
                sec.as_user("admin").replace_namespaced_custom_object(
                    GROUP, VERSION, sec.namespace, "pipelines", "large", body
                )
            )
        except ApiException as exc:
            if exc.status != 409:
                raise
            return None

    updated = wait_until(replaced, timeout=30, what="an update of the large pipeline")
    assert updated["spec"]["tasks"][0]["script"].endswith(" y")
    big = one_task("oversized", script="echo " + "x" * 1_100_000)
    big["spec"]["tasks"][0].pop("command")
    _, message = sec.refused("admin", "pipelines", big)
    assert "over Kascade's limit of 1048576" in message, message[:300]


def test_rejected_typos_are_not_logged_as_errors(sec: Secured) -> None:
    sec.refused("author", "pipelines", one_task("typo", timeout="0s"))
    time.sleep(0.5)
    lines = [line for line in sec.log_text().splitlines() if "typo" in line]
    assert lines and all(" INFO " in line for line in lines), lines
    assert not [
        line for line in sec.log_text().splitlines() if " ERROR " in line and "admit" in line
    ]


def test_pods_run_restricted_by_default(sec: Secured) -> None:
    """The local images (hack/cluster/images.sh) run as nobody under the default context."""
    whoami = 'import os; open(os.environ["KASCADE_OUTPUTS"], "w").write(f"uid={os.getuid()}")'
    doc = pipeline(
        "whoami",
        [
            {"name": "sh", "command": ["sh", "-c", 'echo "uid=$(id -u)" > "$KASCADE_OUTPUTS"']},
            {"name": "py", "image": "python:3.11-slim", "command": ["python3", "-c", whoami]},
        ],
    )
    doc["spec"]["suspend"] = True
    sec.create("author", "pipelines", doc)
    name = sec.kas.create_run("whoami")
    run = sec.kas.wait_run(name, timeout=120)
    assert run["status"]["phase"] == "success", run["status"]
    outputs = {
        t["spec"]["taskName"]: t["status"]["outputs"]
        for t in sec.kas.list("taskruns")
        if t["spec"]["pipelineRunRef"]["name"] == name
    }
    assert outputs == {"sh": {"uid": 65534}, "py": {"uid": 65534}}
    pods = [
        p
        for p in sec.cluster.core.list_namespaced_pod(sec.namespace).items
        if (p.metadata.labels or {}).get("kascade.io/run") == name
    ]
    assert pods
    for pod in pods:
        ctx, c = pod.spec.security_context, pod.spec.containers[0].security_context
        assert ctx.run_as_non_root and ctx.run_as_user != 0
        assert ctx.seccomp_profile.type == "RuntimeDefault"
        assert c.allow_privilege_escalation is False and c.capabilities.drop == ["ALL"]
        assert pod.spec.automount_service_account_token is False


def test_the_apiserver_reaches_nothing_else(sec: Secured) -> None:
    """The webhook configuration only covers the test's namespace."""
    admission = client.AdmissionregistrationV1Api(sec.cluster.api)
    config = admission.read_mutating_webhook_configuration(f"kascade-e2e-{sec.namespace}")
    for hook in config.webhooks:
        assert hook.namespace_selector.match_labels == {
            "kubernetes.io/metadata.name": sec.namespace
        }
    with pytest.raises(ApiException):
        sec.as_user("author").list_namespaced_custom_object(
            GROUP, VERSION, sec.other_namespace, "pipelines"
        )


def test_secret_values_are_masked_in_outputs(sec: Secured) -> None:
    doc = one_task(
        "leaky",
        env=[{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "db", "key": "TOKEN"}}}],
        command=["sh", "-c", 'echo "token=$TOKEN" > "$KASCADE_OUTPUTS"'],
    )
    sec.create("admin", "pipelines", doc)
    run = sec.kas.wait_run(sec.kas.create_run("leaky"), timeout=120)
    assert run["status"]["phase"] == "success", run["status"]
    (taskrun,) = [
        t
        for t in sec.kas.list("taskruns")
        if t["spec"]["pipelineRunRef"]["name"] == run["metadata"]["name"]
    ]
    assert taskrun["status"]["outputs"] == {"token": "***"}
    assert "s3cr3t-value-9f4e2c" not in json.dumps(taskrun) + sec.log_text()


class Recorder:
    """A real HTTP server on this machine's loopback (where the operator process runs)."""

    def __init__(self) -> None:
        import http.server
        import threading

        self.got: list[str] = []
        recorder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                recorder.got.append(self.path)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_notification_webhooks_cannot_reach_the_operators_network(sec: Secured) -> None:
    recorder = Recorder()
    try:
        doc = one_task("ssrf")
        doc["spec"]["notifications"] = [
            {
                "name": "probe",
                "events": ["success"],
                "webhook": {"url": f"http://127.0.0.1:{recorder.port}/internal"},
            }
        ]
        sec.create("author", "pipelines", doc)
        run = sec.kas.wait_run(sec.kas.create_run("ssrf"), timeout=120)
        assert run["status"]["phase"] == "success", run["status"]

        def outcome() -> str | None:
            lines = sec.operator.metrics().splitlines()
            mine = [x for x in lines if x.startswith("kascade_notifications_total{")]
            return next((x for x in mine if 'pipeline="ssrf"' in x and x[-4:] != " 0.0"), None)

        line = wait_until(outcome, timeout=30, what="the notification's outcome")
        assert 'outcome="refused"' in line, line
        assert recorder.got == []
        assert "non-public address" in sec.log_text()
    finally:
        recorder.close()


def test_the_log_is_one_named_line_per_event(sec: Secured) -> None:
    lines = sec.log_text().splitlines()
    assert not [line for line in lines if "succeeded." in line and " INFO " in line]
    ns = sec.namespace
    assert any(f"PipelineRun {ns}/" in line and "RunSuccess" in line for line in lines), lines[-40:]
    assert any(f"Pipeline {ns}/deputy" in line for line in lines)
    for line in lines:
        if " ERROR " in line or "Traceback" in line:
            raise AssertionError(f"an error in the operator log: {line}")


def test_kubectl_explain_describes_every_task_field(sec: Secured, tmp_path: Path) -> None:
    import subprocess

    from .test_helm_install import find_kubectl

    kubectl = find_kubectl()
    if kubectl is None:
        pytest.skip("no kubectl (make cluster-build builds one)")
    for field, words in (
        ("pipeline.spec.tasks.image", "The container image"),
        ("pipeline.spec.tasks.securityContext", "restricted default"),
        ("pipeline.spec.tasks.retries", "retried"),
        ("taskrun.status.outputs", "masked"),
    ):
        proc = subprocess.run(
            [kubectl, "explain", field],
            env={"KUBECONFIG": kubeconfig_path(), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
        assert words in " ".join(proc.stdout.split()), (field, proc.stdout)


def test_runs_the_operator_creates_carry_their_pipelines_approval(sec: Secured) -> None:
    """Scheduled runs, and runs created without a spec, run as their Pipeline was approved."""
    ticker = one_task("ticker", serviceAccountName="etl")
    ticker["spec"]["suspend"] = False
    ticker["spec"]["schedule"] = "10s"
    sec.create("admin", "pipelines", ticker)
    try:

        def scheduled() -> dict[str, Any] | None:
            for run in sec.kas.list("pipelineruns", "kascade.io/pipeline=ticker"):
                if (run.get("status") or {}).get("phase") in ("success", "failed"):
                    return run
            return None

        run = wait_until(scheduled, timeout=90, what="a scheduled run of ticker")
        assert run["spec"]["trigger"]["kind"] == "scheduled"
        assert run["status"]["phase"] == "success", run["status"]
    finally:
        sec.kas.custom.patch_namespaced_custom_object(
            GROUP, VERSION, sec.namespace, "pipelines", "ticker", {"spec": {"suspend": True}}
        )
    # The author may start the admin's pipeline by reference (no spec of their own).
    sec.create("author", "pipelineruns", run_body("by-reference", "approved"))
    run = sec.kas.wait_run("by-reference", timeout=120)
    assert run["status"]["phase"] == "success", run["status"]
    # It executes the Pipeline's snapshot, which carries the Pipeline's approval.
    assert not run["spec"].get("pipelineSpec")
    snapshot = sec.kas.get("pipelinesnapshots", run["spec"]["snapshot"])
    assert (
        snapshot["metadata"]["annotations"][APPROVAL]
        == (sec.kas.get("pipelines", "approved")["metadata"]["annotations"][APPROVAL])
    )


def test_a_pipeline_stored_before_approvals_is_approved_by_an_annotation(sec: Secured) -> None:
    """After upgrading to approvals, `kubectl annotate` by someone with the rights approves
    a Pipeline that was stored without one (and the operator runs it again)."""
    admission = client.AdmissionregistrationV1Api(sec.cluster.api)
    name = f"kascade-e2e-{sec.namespace}"
    config = admission.read_mutating_webhook_configuration(name)
    selectors = [h.namespace_selector for h in config.webhooks]
    off = {"matchLabels": {"kascade-e2e": "nowhere"}}
    patch = [{"op": "replace", "path": f"/webhooks/{i}/namespaceSelector", "value": off}
             for i in range(len(selectors))]  # fmt: skip
    admission.patch_mutating_webhook_configuration(name, patch)
    try:
        # As if stored by an older Kascade: no approval (retried until the API server's
        # webhook configuration cache has the new selector).
        doc_name = "legacy"
        doc = one_task(doc_name, serviceAccountName="etl")

        def stored_unapproved() -> bool:
            api = sec.kas.custom
            made = api.create_namespaced_custom_object(
                GROUP, VERSION, sec.namespace, "pipelines", doc
            )
            if APPROVAL not in (made["metadata"].get("annotations") or {}):
                return True
            api.delete_namespaced_custom_object(
                GROUP, VERSION, sec.namespace, "pipelines", "legacy"
            )
            wait_until(lambda: sec.cluster.gone(lambda: sec.kas.get("pipelines", "legacy")))
            return False

        wait_until(stored_unapproved, timeout=30, interval=1, what="a pipeline without approval")
    finally:
        restore = [
            {"op": "replace", "path": f"/webhooks/{i}/namespaceSelector",
             "value": {"matchLabels": {"kubernetes.io/metadata.name": sec.namespace}}}
            for i in range(len(selectors))
        ]  # fmt: skip
        admission.patch_mutating_webhook_configuration(name, restore)

    def valid() -> dict[str, Any] | None:
        conds = (sec.kas.get("pipelines", "legacy").get("status") or {}).get("conditions") or []
        return next((c for c in conds if c["type"] == "Valid"), None)

    cond = wait_until(valid, timeout=60, what="the legacy pipeline's condition")
    assert cond["status"] == "False" and "not approved" in cond["message"]
    # The author (no rights to ServiceAccount etl) cannot approve it by annotating; admin can.
    annotate = {"metadata": {"annotations": {"kascade.io/approve": "now"}}}

    def annotated_by(user: str) -> None:
        def attempt() -> bool:
            try:
                sec.as_user(user).patch_namespaced_custom_object(
                    GROUP, VERSION, sec.namespace, "pipelines", "legacy", annotate
                )
                return True
            except ApiException as exc:
                if "calling webhook" not in str(exc.body):  # selector change settling
                    raise
                return False

        wait_until(attempt, timeout=30, interval=1, what=f"{user} annotating legacy")

    annotated_by("author")
    assert APPROVAL not in sec.kas.get("pipelines", "legacy")["metadata"]["annotations"]
    annotated_by("admin")
    assert approval_of(sec, "legacy")["by"].endswith(":admin")
    wait_until(
        lambda: (c := valid()) is not None and c["status"] == "True",
        timeout=60,
        what="the legacy pipeline valid again",
    )
    run = sec.kas.wait_run(sec.kas.create_run("legacy"), timeout=120)
    assert run["status"]["phase"] == "success", run["status"]
