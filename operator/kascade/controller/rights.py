"""What a pipeline spec asks its pods to do, as rights its author must hold.

The operator creates pods with its own ServiceAccount, so without this check a
user allowed only to create Pipelines could run pods as any ServiceAccount of
the namespace, read any Secret into an output, or mount the node's filesystem
(the confused deputy). Each :class:`Need` is one thing the spec asks for, with
the Kubernetes permissions of which the author must hold at least one (the
admission webhook asks the API server with SubjectAccessReviews):

* a ServiceAccount other than ``default``: ``create pods`` in the namespace (what
  running a pod as that account takes without Kascade), or the narrower
  ``use serviceaccounts/<name>`` that an admin can grant for Kascade alone;
* a Secret, ConfigMap or PersistentVolumeClaim (env, envFrom, volumes,
  connections, variables, a notification's ``urlFrom``, the SMTP Secret of a
  pipeline that sends e-mail): ``get`` on it;
* a run of another pipeline (``triggerPipeline``): ``create pipelineruns`` in the
  namespace it runs in (and ``delete pipelineruns`` there for ``resetDagRun``), as
  ``kubectl create`` of that PipelineRun would take;
* anything beyond Pod Security "restricted" (privileged, added capabilities,
  root, hostPath, ...): ``create pods`` in the namespace; the namespace's own
  Pod Security level is enforced too, by the dry run of the pod;
* a TaskTemplate (``template.kind: TaskTemplate``): ``get`` on it; what the
  template's fields ask (Secrets, ServiceAccounts, privileges) is in the plan, so
  the author must hold those rights too. A run checks again, with the TaskTemplates it
  pinned, that its Pipeline's approval covers every right they ask
  (``approval.grants_problem``).

Pure: the pods are built with the operator's own pod builder, nothing is sent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from kascade.api.base import GROUP
from kascade.api.pipeline import EnvVar, Notification, PipelineSpec
from kascade.controller import pod_security
from kascade.controller.pod_preview import preview_pod
from kascade.engine import task_templates
from kascade.engine.plan import Plan, PlannedTask


@dataclass(frozen=True)
class Check:
    """One permission, as a SubjectAccessReview's resourceAttributes."""

    verb: str
    resource: str
    name: str | None = None
    group: str = ""
    namespace: str | None = None
    """Another namespace than the spec's (None: the spec's own)."""

    def __str__(self) -> str:
        target = f"{self.resource}/{self.name}" if self.name else self.resource
        where = f" in namespace {self.namespace}" if self.namespace else ""
        return f"{self.verb} {target}{where}"


@dataclass(frozen=True)
class Need:
    """Something the spec asks for, satisfied by any one of ``checks``."""

    grant: str
    """Recorded in the approval: ``serviceaccount:etl``, ``secret:db``, ``pods:elevated``."""
    checks: tuple[Check, ...]
    path: str
    """Where the spec asks for it (the first place, when several do)."""
    why: str


CREATE_PODS = Check("create", "pods")


def needs(plan: Plan, spec: PipelineSpec) -> list[Need]:
    """Every right the spec needs, once each (the first field path that needs it)."""
    found: dict[str, Need] = {}
    for need in _all_needs(plan, spec):
        found.setdefault(need.grant, need)
    return list(found.values())


def _all_needs(plan: Plan, spec: PipelineSpec) -> Iterator[Need]:
    for name in sorted(task_templates.used(spec)):
        yield Need(
            f"tasktemplate:{name}",
            (Check("get", "tasktemplates", name, GROUP),),
            _template_use(plan, name),
            f"uses TaskTemplate {name!r}",
        )
    for i, conn in enumerate(spec.connections or []):
        yield _secret(conn.secret, f"spec.connections[{i}].secret")
    for i, var in enumerate(spec.variables or []):
        yield _config_map(var.config_map, f"spec.variables[{i}].configMap")
    for i, n in enumerate(spec.notifications or []):
        yield from _notification(n, f"spec.notifications[{i}]")
    for task in plan.tasks:
        yield from _task(task, spec)
    mail = _sends_email(plan)
    if mail is not None:
        need = _secret(plan.smtp_secret, "spec.smtp.secret" if spec.smtp else mail)
        yield Need(need.grant, need.checks, need.path, f"{need.why} (the SMTP settings)")


def _task(task: PlannedTask, spec: PipelineSpec) -> Iterator[Need]:
    t = task.spec
    p = task.path
    account = t.service_account_name
    if account and account != "default":
        yield Need(
            f"serviceaccount:{account}",
            (CREATE_PODS, Check("use", "serviceaccounts", account)),
            task.field_path("service_account_name", "serviceAccountName"),
            f"runs pods as ServiceAccount {account!r}",
        )
    yield from _env(t.env, task.field_path("env", "env"))
    for j, source in enumerate(t.env_from or []):
        yield from _env_source(source, f"{task.field_path('env_from', 'envFrom')}[{j}]")
    for j, volume in enumerate(t.volumes or []):
        yield from _volume(volume, f"{task.field_path('volumes', 'volumes')}[{j}]")
    for j, n in enumerate(task.notifications):
        yield from _notification(n, f"{task.field_path('notifications', 'notifications')}[{j}]")
    yield from _trigger(task)
    loosened = pod_security.violations(preview_pod(task, spec, "preview"))
    if loosened:
        yield Need(
            "pods:elevated",
            (CREATE_PODS,),
            p,
            "loosens the restricted pod security context: " + "; ".join(loosened),
        )


def _sends_email(plan: Plan) -> str | None:
    """Where the spec first asks for e-mail (None: it never sends any)."""
    for i, n in enumerate(plan.spec.notifications or []):
        if n.email is not None:
            return f"spec.notifications[{i}].email"
    for task in plan.tasks:
        if task.spec.send_email is not None:
            return f"{task.path}.sendEmail"
        if task.spec.email and any(n.email is not None for n in task.notifications):
            return task.field_path("email", "email")
        for j, n in enumerate(task.notifications):
            if n.email is not None:
                return f"{task.path}.notifications[{j}].email"
    return None


def _trigger(task: PlannedTask) -> Iterator[Need]:
    trigger = task.spec.trigger_pipeline
    if trigger is None:
        return
    path = f"{task.path}.triggerPipeline"
    label = f"namespace {trigger.namespace}" if trigger.namespace else "its namespace"
    verbs = ("create", "delete") if trigger.reset_dag_run else ("create",)
    for verb in verbs:
        yield Need(
            f"pipelineruns:{verb}:{trigger.namespace or ''}",
            (Check(verb, "pipelineruns", group=GROUP, namespace=trigger.namespace),),
            f"{path}.resetDagRun" if verb == "delete" else f"{path}.pipeline",
            f"{'replaces' if verb == 'delete' else 'starts'} runs of pipeline "
            f"{trigger.pipeline!r} in {label}",
        )


def _secret(name: str, path: str) -> Need:
    return Need(f"secret:{name}", (Check("get", "secrets", name),), path, f"reads Secret {name!r}")


def _config_map(name: str, path: str) -> Need:
    return Need(
        f"configmap:{name}",
        (Check("get", "configmaps", name),),
        path,
        f"reads ConfigMap {name!r}",
    )


def _claim(name: str, path: str) -> Need:
    return Need(
        f"persistentvolumeclaim:{name}",
        (Check("get", "persistentvolumeclaims", name),),
        path,
        f"mounts PersistentVolumeClaim {name!r}",
    )


Maker = Callable[[str, str], Need]
#: Where each kind of reference names its object: (field, key of the name, need).
ENV_REFS: tuple[tuple[str, str, Maker], ...] = (
    ("secretKeyRef", "name", _secret),
    ("configMapKeyRef", "name", _config_map),
)
SOURCE_REFS: tuple[tuple[str, str, Maker], ...] = (
    ("secretRef", "name", _secret),
    ("configMapRef", "name", _config_map),
)
VOLUME_REFS: tuple[tuple[str, str, Maker], ...] = (
    ("secret", "secretName", _secret),
    ("configMap", "name", _config_map),
    ("persistentVolumeClaim", "claimName", _claim),
)
PROJECTED_REFS: tuple[tuple[str, str, Maker], ...] = (
    ("secret", "name", _secret),
    ("configMap", "name", _config_map),
)


def _refs(
    obj: dict[str, Any], path: str, table: tuple[tuple[str, str, Maker], ...]
) -> Iterator[Need]:
    for field, key, make in table:
        name = (obj.get(field) or {}).get(key)
        if name:
            yield make(str(name), f"{path}.{field}")


def _env(env: list[EnvVar] | None, path: str) -> Iterator[Need]:
    for j, var in enumerate(env or []):
        yield from _refs(var.value_from or {}, f"{path}[{j}].valueFrom", ENV_REFS)


def _env_source(source: dict[str, Any], path: str) -> Iterator[Need]:
    yield from _refs(source, path, SOURCE_REFS)


def _volume(volume: dict[str, Any], path: str) -> Iterator[Need]:
    yield from _refs(volume, path, VOLUME_REFS)
    for k, item in enumerate((volume.get("projected") or {}).get("sources") or []):
        yield from _refs(item, f"{path}.projected.sources[{k}]", PROJECTED_REFS)


def _notification(n: Notification, path: str) -> Iterator[Need]:
    if n.webhook is not None and n.webhook.url_from is not None:
        yield _secret(n.webhook.url_from.name, f"{path}.webhook.urlFrom")
    if n.hook is not None:
        yield from _env(n.hook.env, f"{path}.hook.env")


def _template_use(plan: Plan, name: str) -> str:
    """Where a TaskTemplate is used (a task that took a field from it), for messages."""
    for task in plan.tasks:
        if any(path.startswith(f"tasktemplates/{name}.") for path in task.sources.values()):
            return f"{task.path}.template.name"
    return "spec"


def grants(met: list[Need]) -> list[str]:
    return sorted(n.grant for n in met)


def describe(need: Need) -> str:
    """``path: <why>, which needs <check> (or <check>) in the namespace``."""
    checks = " or ".join(str(c) for c in need.checks)
    return f"{need.path}: {need.why}, which needs {checks}"
