"""Admission webhooks for Pipelines and PipelineRuns (kopf's webhook support).

Importing this module registers, in kopf's default registry, two *mutating*
handlers (CREATE and UPDATE): ``/admit-pipeline`` and ``/admit-pipelinerun``.
Each runs :class:`kascade.controller.review.Reviewer` (the engine's validation,
a dry run of the pods, the author's rights) and either rejects the request with
every problem as ``path: message`` (422, or 403 for missing rights), or admits
it with the signed ``kascade.io/approval`` annotation the operator verifies
before running a spec. Mutating, because only the webhook sees who is asking.

A startup hook serves them with kopf's webhook server over TLS on port 9443
(``KASCADE_WEBHOOK_PORT``), with the certificate and key mounted from a Secret
at ``KASCADE_WEBHOOK_CERT_DIR`` (kopf reloads them when they change, e.g. after
cert-manager renews them), accepting request bodies up to
:data:`MAX_REQUEST_BYTES` (aiohttp's default of 1 MiB answered HTTP 413 to big
Pipelines, and an UPDATE carries the old object and the new one).

The webhook configuration is not managed by kopf: the Helm chart owns it. The
operator imports this module only when ``KASCADE_WEBHOOK`` is set.
"""

from __future__ import annotations

import base64
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp.web
import kopf

from kascade.api.base import GROUP, VERSION
from kascade.controller import approval
from kascade.controller.review import Request, Reviewer, Verdict
from kascade.engine.validation import validate_document
from kascade.kube.access import Access, UserInfo

log = logging.getLogger("kascade.admission")

#: kopf handler ids; kopf's webhook server routes ``/<id>`` to each.
WEBHOOK_ID = "admit-pipeline"
RUN_WEBHOOK_ID = "admit-pipelinerun"
TEMPLATE_WEBHOOK_ID = "admit-tasktemplate"
WEBHOOK_PATH = f"/{WEBHOOK_ID}"
RUN_WEBHOOK_PATH = f"/{RUN_WEBHOOK_ID}"
TEMPLATE_WEBHOOK_PATH = f"/{TEMPLATE_WEBHOOK_ID}"
DEFAULT_PORT = 9443
DEFAULT_CERT_DIR = "/etc/kascade/webhook"
#: Longest rejection message (the API server shows it to the user).
MAX_MESSAGE = 4000
MAX_REQUEST_BYTES = 8 * 1024 * 1024
"""An AdmissionReview of an UPDATE carries the new object (the API server accepts up to
3 MiB) and the stored one (etcd: up to 1.5 MiB), JSON-escaped in one body."""


def enabled() -> bool:
    """The operator serves the webhook when ``KASCADE_WEBHOOK`` is set (to anything but 0/false)."""
    return os.environ.get("KASCADE_WEBHOOK", "").strip().lower() not in ("", "0", "false", "no")


def rejection(body: dict[str, Any]) -> str | None:
    """Every issue of a Pipeline manifest as ``path: message`` lines; None when it is valid."""
    _, _, issues = validate_document(body)
    if not issues:
        return None
    return _message([str(issue) for issue in issues])


def judge(operation: str | None, new: dict[str, Any] | None, old: dict[str, Any] | None) -> None:
    """The engine's validation alone: raise :class:`kopf.AdmissionError` (422) on a bad spec."""
    if new is None:
        return
    if operation == "UPDATE" and old is not None:
        if (new.get("metadata") or {}).get("deletionTimestamp"):
            return
        if new.get("spec") == old.get("spec"):
            return
    message = rejection(new)
    if message is not None:
        raise kopf.AdmissionError(message, code=422)


def _message(lines: list[str]) -> str:
    message = "\n".join(lines)
    if len(message) > MAX_MESSAGE:
        message = message[: MAX_MESSAGE - 3] + "..."
    return message


_REVIEWER: list[Reviewer] = []


def reviewer() -> Reviewer:
    """One reviewer per process, made on first use (the kube config is loaded by then)."""
    if not _REVIEWER:
        _REVIEWER.append(Reviewer(Access(), approval.policy_from_env().key))
    return _REVIEWER[0]


async def _admit(
    kind: str,
    body: Any,
    old: Any,
    operation: str | None,
    userinfo: Any,
    patch: kopf.Patch,
) -> None:
    new = _plain(body)
    meta = new.get("metadata") or {}
    request = Request(
        operation=operation or "CREATE",
        namespace=str(meta.get("namespace") or ""),
        user=UserInfo.of(userinfo),
        new=new,
        old=_plain(old) if old is not None else None,
    )
    rev = reviewer()
    judges = {"Pipeline": rev.pipeline, "PipelineRun": rev.run, "TaskTemplate": rev.task_template}
    verdict: Verdict = await judges[kind](request)
    where = f"{kind} {request.namespace}/{meta.get('name') or meta.get('generateName') or '?'}"
    if not verdict.allowed:
        # A user's typo is not an operator error: INFO, with the first problem.
        log.info(
            "Rejected %s from %s: %d problem(s), first: %s",
            where,
            request.user.username,
            len(verdict.problems),
            verdict.problems[0][:300],
        )
        raise kopf.AdmissionError(_message(verdict.problems), code=verdict.code)
    annotations = meta.get("annotations") or {}
    if kind != "TaskTemplate" and annotations.get(approval.ANNOTATION) != verdict.approval:
        patch.metadata.annotations[approval.ANNOTATION] = verdict.approval
    log.debug("Admitted %s from %s", where, request.user.username)


def _handler(kind: str) -> Callable[..., Awaitable[None]]:
    """The kopf mutating handler for one kind (kopf passes the request as keywords)."""

    async def admit(
        body: Any,
        patch: kopf.Patch,
        old: Any = None,
        operation: str | None = None,
        userinfo: Any = None,
        **_: Any,
    ) -> None:
        await _admit(kind, body, old, operation, userinfo, patch)

    admit.__name__ = admit.__qualname__ = f"admit_{kind.lower()}"
    return admit


admit_pipeline = _handler("Pipeline")
admit_pipelinerun = _handler("PipelineRun")
admit_tasktemplate = _handler("TaskTemplate")


class LargeBodyWebhookServer(kopf.WebhookServer):  # type: ignore[misc]
    """kopf's WebhookServer (TLS, certificate reloads) with a request body limit of our own.

    The loop is kopf 1.45's ``WebhookServer.__call__`` with one change: the aiohttp
    Application gets ``client_max_size=MAX_REQUEST_BYTES``.
    """

    async def __call__(self, fn: Any) -> AsyncIterator[dict[str, Any]]:
        async def serve(request: aiohttp.web.Request) -> aiohttp.web.Response:
            return await self._serve(fn, request)  # type: ignore[no-any-return]

        while True:
            cadata, context = self._build_ssl()
            app = aiohttp.web.Application(client_max_size=MAX_REQUEST_BYTES)
            app.add_routes([aiohttp.web.post("/{id:.*}", serve)])
            runner = aiohttp.web.AppRunner(app, handle_signals=False)
            await runner.setup()
            try:
                site = aiohttp.web.TCPSite(
                    runner, self.addr or None, self.port, ssl_context=context, reuse_address=True
                )
                await site.start()
                log.debug("Serving admission webhooks on port %s", self.port)
                config: dict[str, Any] = {"url": f"https://{self.addr}:{self.port}"}
                if cadata is not None:
                    config["caBundle"] = base64.b64encode(cadata).decode("ascii")
                yield config
                await self._WebhookServer__sleep_forever_or_until_ssl_files_change()
                log.info("Webhook certificate files changed: serving the new certificate")
            finally:
                await runner.cleanup()


def server_settings(settings: Any, **_: Any) -> None:
    """Startup hook: serve the webhooks over TLS; the chart manages the configuration."""
    cert_dir = Path(os.environ.get("KASCADE_WEBHOOK_CERT_DIR", DEFAULT_CERT_DIR))
    settings.admission.server = LargeBodyWebhookServer(
        addr=os.environ.get("KASCADE_WEBHOOK_ADDR", "0.0.0.0"),
        port=int(os.environ.get("KASCADE_WEBHOOK_PORT", str(DEFAULT_PORT))),
        certfile=str(cert_dir / "tls.crt"),
        pkeyfile=str(cert_dir / "tls.key"),
    )
    settings.admission.managed = None


def _plain(value: Any) -> dict[str, Any]:
    """kopf's Body is a read-only mapping view; the validators want plain dicts."""
    if isinstance(value, dict):
        return value
    return {k: _deep(v) for k, v in dict(value).items()}


def _deep(value: Any) -> Any:
    if isinstance(value, dict) or (hasattr(value, "items") and hasattr(value, "keys")):
        return {k: _deep(v) for k, v in dict(value).items()}
    if isinstance(value, list):
        return [_deep(v) for v in value]
    return value


# Registration (plain calls rather than decorators keep the functions typed for mypy).
kopf.on.startup()(server_settings)
for _plural, _id, _fn in (
    ("pipelines", WEBHOOK_ID, admit_pipeline),
    ("pipelineruns", RUN_WEBHOOK_ID, admit_pipelinerun),
    ("tasktemplates", TEMPLATE_WEBHOOK_ID, admit_tasktemplate),
):
    kopf.on.mutate(
        GROUP,
        VERSION,
        _plural,
        id=_id,
        operations=["CREATE", "UPDATE"],
        side_effects=False,
    )(_fn)
