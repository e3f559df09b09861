"""E-mail from the operator: the SMTP Secret, read only within the approval, and delivery.

The operator sends e-mail itself (alerts and ``sendEmail`` tasks), as it posts
webhooks, so it reads the pipeline's SMTP Secret (``spec.smtp``, default
``kascade-smtp``). It does so only when the spec's approval lists that Secret: the
admission webhook checked that the author may read it (``controller/rights.py``).
A server that fails is tried again (``integrations.mailing.deliver``), and every
failure is an Event on the run and a count in ``kascade_emails_total``; settings and
server replies are said, passwords never (the settings module never shows values).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kascade import metrics
from kascade.controller import approval
from kascade.engine.callbacks import RenderedEmail
from kascade.integrations import mailing
from kascade.integrations.settings import SettingsError, SmtpSettings
from kascade.kube.client import Kube

Emit = Callable[[dict[str, Any], str, str, str], None]


@dataclass(frozen=True)
class Mailer:
    """Sends e-mail for one run (its namespace, pipeline and approval)."""

    kube: Kube
    run: dict[str, Any]
    """The PipelineRun: where Events go, and whose approval covers the Secret."""
    pipeline: str
    secret: str
    emit: Emit
    delays: tuple[float, ...] = mailing.RETRY_DELAYS

    @property
    def namespace(self) -> str:
        return str(self.run["metadata"]["namespace"])

    async def settings(self) -> SmtpSettings:
        """Raises SettingsError saying why there are none (never showing a value)."""
        if not approval.granted(self.run["metadata"], f"secret:{self.secret}"):
            raise SettingsError(
                f"the approval of this spec does not cover reading Secret {self.secret!r} "
                "(apply the pipeline again with the admission webhook on)"
            )
        data = await asyncio.to_thread(self.kube.read_secret_data, self.namespace, self.secret)
        if data is None:
            raise SettingsError(f"Secret {self.namespace}/{self.secret} not found")
        return SmtpSettings.from_data(data, f"Secret {self.namespace}/{self.secret}")

    async def send(self, email: RenderedEmail, ident: str, what: str) -> str | None:
        """Deliver (with retries); None when it went out, else why not (also an Event)."""
        try:
            settings = await self.settings()
            message = mailing.compose(
                settings,
                mailing.Email(
                    to=email.to, cc=email.cc, bcc=email.bcc, subject=email.subject, html=email.html
                ),
                message_id=ident,
            )
        except (SettingsError, mailing.RecipientError) as exc:
            self._failed(what, str(exc))
            return str(exc)
        last: list[str] = []

        def failure(error: mailing.DeliveryError, retry_in: float | None) -> None:
            last[:] = [str(error)]
            if retry_in is None:
                self._failed(what, str(error))
            else:
                metrics.EMAILS.labels(self.namespace, self.pipeline, "retried").inc()
                self.emit(
                    self.run,
                    "Warning",
                    "EmailRetrying",
                    f"{what}: {error}; trying again in {retry_in:.0f}s",
                )

        if await mailing.deliver(settings, message, on_failure=failure, delays=self.delays):
            metrics.EMAILS.labels(self.namespace, self.pipeline, "sent").inc()
            self.emit(self.run, "Normal", "EmailSent", f"{what}: sent to {', '.join(email.to)}")
            return None
        return last[0] if last else "not sent"

    def _failed(self, what: str, why: str) -> None:
        metrics.EMAILS.labels(self.namespace, self.pipeline, "failed").inc()
        self.emit(self.run, "Warning", "EmailFailed", f"{what}: not sent: {why}")
