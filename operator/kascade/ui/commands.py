"""The UI's buttons: each POST calls the same ``kascade.actions`` function as the CLI.

The action runs with the user's own credentials (their token in a cluster, the
kubeconfig locally), after a CSRF check and, in a cluster, a
SubjectAccessReview so a refusal names what RBAC forbids before anything is
written. The API server still enforces RBAC on every call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from kascade import actions
from kascade.ui import keys, pages

Handler = Callable[[Any, str, dict[str, Any], str], Awaitable[dict[str, Any]]]

NEEDS: dict[str, list[tuple[str, str]]] = {
    "trigger": [("create", "pipelineruns")],
    "backfill": [("create", "pipelineruns")],
    "clear": [("delete", "taskruns"), ("delete", "pods"), ("patch", "pipelineruns")],
    "mark": [("patch", "taskruns/status"), ("patch", "pipelineruns/status")],
    "pause": [("patch", "pipelines")],
    "unpause": [("patch", "pipelines")],
}
"""The RBAC verbs each action needs (checked first, for a clear refusal)."""


def _text(body: dict[str, Any], field: str, required: bool = True) -> str:
    value = body.get(field)
    if value is None or value == "":
        if required:
            raise actions.ActionError(f"{field}: required")
        return ""
    if not isinstance(value, str):
        raise actions.ActionError(f"{field}: expected a string")
    return value


def _params(body: dict[str, Any]) -> list[str]:
    raw = body.get("params") or {}
    if not isinstance(raw, dict):
        raise actions.ActionError("params: expected an object of name → value")
    pairs = []
    for key, value in raw.items():
        text = value if isinstance(value, str) else _json(value)
        pairs.append(f"{key}={text}")
    return pairs


def _json(value: Any) -> str:
    import json

    return json.dumps(value)


def run_action(kube: Any, action: str, ns: str, body: dict[str, Any], user: str) -> dict[str, Any]:
    """Blocking: called on a thread."""
    now = datetime.now(UTC)
    if action == "trigger":
        name = actions.trigger(
            kube,
            ns,
            _text(body, "pipeline"),
            params=_params(body),
            logical_date=_text(body, "logicalDate", required=False) or None,
            by=user,
            now=now,
        )
        return {"message": f"pipelinerun/{name} created", "run": name}
    if action == "backfill":
        made = actions.backfill(
            kube,
            ns,
            _text(body, "pipeline"),
            start=_text(body, "from"),
            end=_text(body, "to"),
            now=now,
        )
        created = [m.name for m in made if m.created]
        return {
            "message": f"{len(created)} run(s) created, {len(made) - len(created)} existed",
            "runs": [m.name for m in made],
        }
    if action == "clear":
        tasks = body.get("tasks") or []
        if not isinstance(tasks, list) or not all(isinstance(t, str) for t in tasks):
            raise actions.ActionError("tasks: expected a list of task ids")
        keys = actions.clear(
            kube, ns, _text(body, "run"), tasks=tasks, downstream=bool(body.get("downstream"))
        )
        return {"message": f"cleared {len(keys)} task instance(s)", "cleared": keys}
    if action == "mark":
        run, task, state = _text(body, "run"), _text(body, "task"), _text(body, "state")
        actions.mark(kube, ns, run, task, state)
        return {"message": f"{task} marked {state}"}
    if action in ("pause", "unpause"):
        pipeline = _text(body, "pipeline")
        actions.set_paused(kube, ns, pipeline, action == "pause")
        return {"message": f"pipeline {pipeline} {action}d"}
    raise actions.ActionError(f"unknown action {action!r}")


async def act(request: web.Request) -> web.Response:
    from kascade.kube.errors import ApiException

    auth, user = request.app[keys.AUTH], request[keys.USER]
    action = request.match_info["action"]
    if action not in NEEDS:
        return pages.json_error(404, f"unknown action {action!r}")
    auth.check_csrf(request, user)
    if auth.read_only:
        return pages.json_error(403, "this UI is read-only (--read-only)")
    kube = auth.kube_for(user)
    if kube is None:
        return pages.json_error(403, "the local run history is read-only")
    try:
        body = await request.json()
    except ValueError:
        return pages.json_error(400, "expected a JSON body")
    if not isinstance(body, dict):
        return pages.json_error(400, "expected a JSON object")
    ns = body.get("namespace")
    if not isinstance(ns, str) or not ns:
        return pages.json_error(400, "namespace: required")
    for verb, resource in NEEDS[action]:
        reason = await auth.why_not(user, verb, resource, ns)
        if reason:
            return pages.json_error(403, f"{reason}: {action} refused")
    try:
        result = await asyncio.to_thread(run_action, kube, action, ns, body, user.name)
    except actions.ActionError as exc:
        return pages.json_error(400, str(exc))
    except ApiException as exc:
        return pages.json_error(exc.status or 502, _api_message(exc))
    return web.json_response(result)


def _api_message(exc: Any) -> str:
    import json

    try:
        return str(json.loads(exc.body or "{}").get("message") or exc.reason)
    except ValueError:
        return str(exc.reason)
