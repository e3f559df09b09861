"""One operator → one task of the Pipeline (wire form), before defaults are hoisted.

The operator's ``_lower`` gives what the task *is* (command, sensor, runtime
call); this module adds what every task shares: policies (retries, timeouts,
trigger rule, pool, SLA), Kascade's container fields, ``when``, mapping, and the
callbacks as notification hooks that run the Python callback through the runtime.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from typing import Any

from kascade.sdk import templates
from kascade.sdk.baseoperator import BaseOperator
from kascade.sdk.compiler.refs import output_ref
from kascade.sdk.dag import DAG
from kascade.sdk.exceptions import UnsupportedFeature
from kascade.sdk.lowering import Lowerer, Target, hook
from kascade.sdk.notifications import SmtpNotifier
from kascade.sdk.operators.kubernetes import api_form
from kascade.sdk.templates import to_template
from kascade.sdk.timing import duration
from kascade.sdk.trigger_rule import TriggerRule

#: (attribute, wire field, converter)
_POLICY: tuple[tuple[str, str, Any], ...] = (
    ("retries", "retries", int),
    ("retry_delay", "retryDelay", duration),
    ("retry_exponential_backoff", "retryExponentialBackoff", bool),
    ("max_retry_delay", "maxRetryDelay", duration),
    ("execution_timeout", "timeout", duration),
    ("start_timeout", "startTimeout", duration),
    ("priority_weight", "priorityWeight", int),
    ("pool", "pool", str),
    ("pool_slots", "poolSlots", int),
    ("sla", "sla", duration),
)
#: Values that are Airflow's (and Kascade's) defaults: left out of the manifest.
_NEUTRAL = {"retryExponentialBackoff": False, "priorityWeight": 1, "poolSlots": 1}
_CONTAINER = {
    "image_pull_policy": "imagePullPolicy",
    "container_resources": "resources",
    "security_context": "securityContext",
    "service_account_name": "serviceAccountName",
    "node_selector": "nodeSelector",
    "tolerations": "tolerations",
    "env_from": "envFrom",
}
_EVENTS = (
    ("on_failure_callback", "failure"),
    ("on_retry_callback", "retry"),
    ("on_success_callback", "success"),
)
_OUTPUT_REF = re.compile(r"\btasks\.([A-Za-z0-9_][A-Za-z0-9_.\-]*?)\.outputs\b")


def policy_fields(values: dict[str, Any]) -> dict[str, Any]:
    """Wire policy fields from operator attributes (or default_args)."""
    out: dict[str, Any] = {}
    for attr, wire, convert in _POLICY:
        value = values.get(attr)
        if value is None:
            continue
        converted = convert(value, attr) if convert is duration else convert(value)
        if _NEUTRAL.get(wire) == converted:
            continue
        out[wire] = converted
    rule = values.get("trigger_rule")
    if rule is not None and TriggerRule(rule) is not TriggerRule.ALL_SUCCESS:
        out["triggerRule"] = TriggerRule(rule).value
    out.update(email_fields(values))
    return out


def email_fields(values: dict[str, Any]) -> dict[str, Any]:
    """Airflow's ``email``/``email_on_failure``/``email_on_retry`` (the flags only when set,
    and only with addresses: without ``email`` Airflow sends nothing either)."""
    email = values.get("email")
    if not email:
        return {}
    out: dict[str, Any] = {"email": [email] if isinstance(email, str) else list(email)}
    for attr, wire in (("email_on_failure", "emailOnFailure"), ("email_on_retry", "emailOnRetry")):
        if values.get(attr) is not None:
            out[wire] = bool(values[attr])
    return out


def container_fields(container: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for attr, wire in _CONTAINER.items():
        if container.get(attr) is not None:
            out[wire] = api_form(container[attr])
    return out


def notifier_email(notifier: SmtpNotifier, dag_id: str) -> dict[str, Any]:
    """An SmtpNotifier as the ``email`` of a notification: its Jinja translated."""
    out: dict[str, Any] = {}
    for attr in ("to", "cc", "bcc"):
        values = getattr(notifier, attr)
        if values:
            out[attr] = [templates.translate(v, dag_id) for v in values]
    if notifier.subject is not None:
        out["subject"] = templates.translate(notifier.subject, dag_id)
    if notifier.html_content is not None:
        out["html"] = templates.translate(notifier.html_content, dag_id)
    return out


def callback_notification(
    target: Target, dag: DAG, scope: str, attr: str, event: str, index: int, callback: Any
) -> dict[str, Any]:
    """One callback: an e-mail for an SmtpNotifier, else a hook running it in the runtime."""
    prefix = "dag-" if scope == "dag" else ""
    name = prefix + attr.replace("_", "-") + (f"-{index + 1}" if index else "")
    if isinstance(callback, SmtpNotifier):
        return {"name": name, "events": [event], "email": notifier_email(callback, dag.dag_id)}
    return {"name": name, "events": [event], "hook": hook(target, dag, scope, attr, index)}


def notifications(target: Target, dag: DAG, op: BaseOperator) -> list[dict[str, Any]]:
    out = []
    for attr, event in _EVENTS:
        for i, callback in enumerate(getattr(op, attr)):
            entry = callback_notification(target, dag, "task", attr, event, i, callback)
            if "hook" in entry and op.container.get("image") and op.runs_in_runtime():
                entry["hook"]["image"] = op.container["image"]  # this task's image has its deps
            out.append(entry)
    if dag.sla_miss_callback is not None and op.sla is not None:
        spec = hook(target, dag, "dag", "sla_miss_callback", 0)
        out.append({"name": "sla-miss-callback", "events": ["slaMiss"], "hook": spec})
    return out


def _expand(op: BaseOperator) -> dict[str, Any] | None:
    spec = op.expand_input
    if spec is None:
        return None
    out: dict[str, Any] = (
        {"items": spec.items} if spec.items is not None else {"param": spec.expression}
    )
    if op.max_active_tis_per_dag:
        out["maxParallel"] = op.max_active_tis_per_dag
    return out


def _relative_outputs(value: Any, task_id: str, nodes: Collection[str]) -> Any:
    """Rewrite ``tasks.<full id>.outputs`` so the engine resolves it from the task's group."""
    if isinstance(value, str):

        def fix(m: re.Match[str]) -> str:
            target = m.group(1)
            if target not in nodes:
                return m.group(0)  # not a task here: the validator reports it with its path
            return f"tasks.{output_ref(target, task_id, nodes)}.outputs"

        return _OUTPUT_REF.sub(fix, value) if "tasks." in value else value
    if isinstance(value, list):
        return [_relative_outputs(v, task_id, nodes) for v in value]
    if isinstance(value, dict):
        return {k: _relative_outputs(v, task_id, nodes) for k, v in value.items()}
    return value


def task_fields(
    dag: DAG, op: BaseOperator, target: Target, ancestors: Sequence[str], nodes: Collection[str]
) -> dict[str, Any]:
    """Everything the task sets, in wire form (name and dependsOn are added by the caller)."""
    if op.on_execute_callback and not op.runs_in_runtime():
        raise UnsupportedFeature(
            f"on_execute_callback on {type(op).__name__} {op.task_id!r}",
            "it runs in the Python runtime only; use it on a Python task",
        )
    for name, value in op.params.items():
        declared = dag.params.get(name)
        if declared is None or declared.value != getattr(value, "value", value):
            raise UnsupportedFeature(
                f"params={{{name!r}: ...}} on task {op.task_id!r}",
                "params belong to the DAG (a Pipeline's params are the run's); declare it "
                "in DAG(params=...) and read it with params[...] in the task",
            )
    lowered = op._lower(Lowerer(dag, op, target, ancestors))
    out: dict[str, Any] = {}
    description = op.doc_md or op.task_display_name
    if description:
        out["description"] = str(description).strip()
    out.update(policy_fields(vars(op)))
    out.update(container_fields(op.container))
    for key, value in lowered.items():
        if key in ("volumes", "volumeMounts"):
            continue
        out[key] = value
    volumes = [*api_form(op.container.get("volumes") or []), *lowered.get("volumes", [])]
    mounts = [*api_form(op.container.get("volume_mounts") or []), *lowered.get("volumeMounts", [])]
    if volumes:
        out["volumes"] = volumes
    if mounts:
        out["volumeMounts"] = mounts
    if op.when:
        out["when"] = _relative_outputs(op.when, op.task_id, nodes)
    if op.cache_key is not None:
        key = to_template(op.cache_key, dag.dag_id, "cache_key")
        cache = {"key": _relative_outputs(key, op.task_id, nodes)}
        expires = duration(op.cache_expiration, "cache_expiration")
        out["cache"] = {**cache, **({"expiresAfter": expires} if expires else {})}
    expand = _expand(op)
    if expand is not None and "param" in expand:
        expand["param"] = _relative_outputs(expand["param"], op.task_id, nodes)
    if expand is not None:
        out["expand"] = expand
    hooks = notifications(target, dag, op)
    if hooks:
        out["notifications"] = hooks
    for key in ("command", "args", "env", "workingDir", "sensor"):
        if key in out:
            out[key] = _relative_outputs(out[key], op.task_id, nodes)
    return out
