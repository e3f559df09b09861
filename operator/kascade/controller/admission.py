"""Validating admission webhook for Pipelines (kopf's webhook support).

Importing this module registers, in kopf's default registry:

* a validating handler for ``pipelines`` (CREATE and UPDATE) that runs the same
  checks as ``kascade validate``, the local runner and the Pipeline's status
  (:func:`kascade.engine.validation.validate_document`) and rejects a manifest with
  every issue as ``path: message`` (HTTP 422);
* a startup hook that serves it with ``kopf.WebhookServer`` over TLS on port 9443
  (``KASCADE_WEBHOOK_PORT``), with the certificate and key mounted from a Secret at
  ``KASCADE_WEBHOOK_CERT_DIR`` (``tls.crt``/``tls.key``; kopf reloads them when they
  change, e.g. after cert-manager renews them).

The ValidatingWebhookConfiguration is not managed by kopf: the Helm chart owns it
(``settings.admission.managed`` stays unset) and sends requests to the path
``/validate-pipeline`` (:data:`WEBHOOK_ID`). The operator imports this module only
when ``KASCADE_WEBHOOK`` is set; without the webhook, a bad Pipeline is still
reported in its status (condition ``Valid``) and never runs.

Only spec changes are judged on UPDATE: the operator's own metadata patches to a
Pipeline created before the webhook existed (or while it was off) must keep working.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import kopf

from kascade.api.base import GROUP, VERSION
from kascade.engine.validation import validate_document

#: kopf handler id; kopf's webhook server routes ``/<id>`` to it.
WEBHOOK_ID = "validate-pipeline"
WEBHOOK_PATH = f"/{WEBHOOK_ID}"
DEFAULT_PORT = 9443
DEFAULT_CERT_DIR = "/etc/kascade/webhook"
#: Longest rejection message (the API server shows it to the user).
MAX_MESSAGE = 4000


def enabled() -> bool:
    """The operator serves the webhook when ``KASCADE_WEBHOOK`` is set (to anything but 0/false)."""
    return os.environ.get("KASCADE_WEBHOOK", "").strip().lower() not in ("", "0", "false", "no")


def rejection(body: dict[str, Any]) -> str | None:
    """Every issue of a Pipeline manifest as ``path: message`` lines; None when it is valid."""
    _, _, issues = validate_document(body)
    if not issues:
        return None
    message = "\n".join(str(issue) for issue in issues)
    if len(message) > MAX_MESSAGE:
        message = message[: MAX_MESSAGE - 3] + "..."
    return message


def judge(operation: str | None, new: dict[str, Any] | None, old: dict[str, Any] | None) -> None:
    """Raise :class:`kopf.AdmissionError` (422) when the request would store a bad spec."""
    if new is None:
        return
    if operation == "UPDATE" and old is not None:
        if (new.get("metadata") or {}).get("deletionTimestamp"):
            return  # finalizers come off an object on its way out, whatever its spec
        if new.get("spec") == old.get("spec"):
            return  # metadata-only change (labels, annotations, finalizers)
    message = rejection(new)
    if message is not None:
        raise kopf.AdmissionError(message, code=422)


def validate_pipeline(body: Any, old: Any = None, operation: str | None = None, **_: Any) -> None:
    """kopf validating handler for ``pipelines``."""
    judge(
        operation,
        _plain(body),
        _plain(old) if old is not None else None,
    )


def server_settings(settings: Any, **_: Any) -> None:
    """Startup hook: serve the webhook over TLS; the chart manages the configuration."""
    cert_dir = Path(os.environ.get("KASCADE_WEBHOOK_CERT_DIR", DEFAULT_CERT_DIR))
    settings.admission.server = kopf.WebhookServer(
        addr="0.0.0.0",
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
kopf.on.validate(
    GROUP,
    VERSION,
    "pipelines",
    id=WEBHOOK_ID,
    operations=["CREATE", "UPDATE"],
    side_effects=False,
)(validate_pipeline)
