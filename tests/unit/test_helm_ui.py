"""The chart's web UI (``ui.enabled``): Deployment, Service, Ingress, read-only RBAC, user roles."""

from __future__ import annotations

from typing import Any

from test_helm_chart import assert_restricted, by_kind, needs_helm, render, rule_resources

WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection", "impersonate", "*"}


def named(docs: list[dict[str, Any]], kind: str, suffix: str) -> dict[str, Any]:
    found = [d for d in by_kind(docs, kind) if d["metadata"]["name"].endswith(suffix)]
    assert len(found) == 1, f"expected one {kind} named *{suffix}, got {len(found)}"
    return found[0]


@needs_helm
def test_ui_is_off_by_default() -> None:
    docs = render()
    names = [d["metadata"]["name"] for d in docs]
    assert not [n for n in names if n.endswith(("-ui", "-pipeline-viewer", "-pipeline-operator"))]


@needs_helm
def test_ui_deployment_service_and_token_auth() -> None:
    docs = render("--set", "ui.enabled=true", "--set", "ui.readOnly=true", "--set", "scope=cluster")
    deploy = named(docs, "Deployment", "-ui")
    pod = deploy["spec"]["template"]["spec"]
    assert_restricted(pod)
    container = pod["containers"][0]
    assert container["command"] == ["kascade", "ui"]
    args = container["args"]
    assert "--auth=token" in args and "--address=0.0.0.0" in args and "--read-only" in args
    assert not [a for a in args if a.startswith("--namespace")]  # cluster scope: every namespace
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert pod["serviceAccountName"].endswith("-ui")
    service = named(docs, "Service", "-ui")
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert service["spec"]["selector"]["app.kubernetes.io/component"] == "ui"
    assert not by_kind(docs, "Ingress")


@needs_helm
def test_ui_server_account_is_read_only() -> None:
    docs = render("--set", "ui.enabled=true", "--set", "scope=cluster")
    role = named(docs, "ClusterRole", "-ui")
    for rule in role["rules"]:
        assert not set(rule["verbs"]) & WRITE_VERBS, rule
    assert ("", "secrets") not in set(rule_resources(role["rules"]))
    assert ("", "pods") not in set(rule_resources(role["rules"]))
    auth = named(docs, "ClusterRoleBinding", "-ui-auth")
    assert auth["roleRef"]["name"] == "system:auth-delegator"  # TokenReview + SubjectAccessReview
    binding = named(docs, "ClusterRoleBinding", "-ui")
    assert binding["subjects"][0]["name"].endswith("-ui")


@needs_helm
def test_ui_in_namespaced_scope_reads_only_watched_namespaces() -> None:
    docs = render(
        "--set",
        "ui.enabled=true",
        "--set",
        "scope=namespaced",
        "--set",
        "watchNamespaces={team-a,team-b}",
    )
    roles = [d for d in by_kind(docs, "Role") if d["metadata"]["name"].endswith("-ui")]
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["team-a", "team-b"]
    assert not [d for d in by_kind(docs, "ClusterRole") if d["metadata"]["name"].endswith("-ui")]
    args = named(docs, "Deployment", "-ui")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--namespace=team-a" in args and "--namespace=team-b" in args


@needs_helm
def test_ui_ingress() -> None:
    docs = render(
        "--set",
        "ui.enabled=true",
        "--set",
        "ui.ingress.enabled=true",
        "--set",
        "ui.ingress.host=ui.example.org",
        "--set",
        "ui.ingress.className=nginx",
    )
    ingress = named(docs, "Ingress", "-ui")
    assert ingress["spec"]["ingressClassName"] == "nginx"
    rule = ingress["spec"]["rules"][0]
    assert rule["host"] == "ui.example.org"
    assert rule["http"]["paths"][0]["backend"]["service"]["port"]["name"] == "http"


@needs_helm
def test_operator_role_covers_every_ui_action_and_viewer_none() -> None:
    """The documented roles match what kascade.actions writes (the UI checks the same verbs)."""
    from kascade.ui.commands import NEEDS

    docs = render("--set", "ui.enabled=true")
    operator = named(docs, "ClusterRole", "-pipeline-operator")
    viewer = named(docs, "ClusterRole", "-pipeline-viewer")

    def allows(role: dict[str, Any], verb: str, resource: str) -> bool:
        return any(
            resource in r["resources"]
            and verb in r["verbs"]
            and r["apiGroups"] in (["kascade.io"], [""])
            for r in role["rules"]
        )

    for needs in NEEDS.values():
        for verb, resource in needs:
            assert allows(operator, verb, resource), (verb, resource)
            assert not allows(viewer, verb, resource), (verb, resource)
    assert allows(viewer, "get", "pods/log")
    assert all(set(r["verbs"]) <= {"get", "list", "watch"} for r in viewer["rules"])
