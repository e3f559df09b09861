"""E-mail from the local runner: where its SMTP settings come from, and sending them.

The settings are the Secret the pipeline names (``spec.smtp``, default
``kascade-smtp``) when the run's file holds it (as connections are read), else the
``KASCADE_SMTP_<key>`` variables of your shell (``KASCADE_SMTP_host=localhost``), the
prefix form ``envFrom`` gives a pod. Nothing configured is not an error: an alert
then becomes a notice, and a ``sendEmail`` task fails with the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.message import EmailMessage

from kascade.engine.callbacks import RenderedEmail
from kascade.integrations import mailing
from kascade.integrations.settings import SettingsError, SmtpSettings, from_env

ENV_PREFIX = "KASCADE_SMTP_"


@dataclass(frozen=True)
class LocalSmtp:
    """The settings, or why there are none (said when an e-mail would go out)."""

    settings: SmtpSettings | None
    problem: str | None = None

    @classmethod
    def find(
        cls, secret: str, secrets: Mapping[str, Mapping[str, str]], environ: Mapping[str, str]
    ) -> LocalSmtp:
        data = secrets.get(secret)
        source = f"Secret {secret!r} in the file"
        if data is None:
            data = from_env(ENV_PREFIX, environ)
            source = f"the {ENV_PREFIX}* variables"
        if not data:
            return cls(
                None,
                f"no SMTP settings: put the Secret {secret!r} in the file, or set "
                f"{ENV_PREFIX}host, {ENV_PREFIX}from (and port, security, user, password)",
            )
        try:
            return cls(SmtpSettings.from_data(data, source))
        except SettingsError as exc:
            return cls(None, str(exc))


def compose(settings: SmtpSettings, email: RenderedEmail, message_id: str) -> EmailMessage:
    rendered = mailing.Email(
        to=email.to, cc=email.cc, bcc=email.bcc, subject=email.subject, html=email.html
    )
    return mailing.compose(settings, rendered, message_id=message_id)


async def send(
    smtp: LocalSmtp,
    email: RenderedEmail,
    message_id: str,
    notice: Callable[[str], None],
    what: str,
    delays: tuple[float, ...] = mailing.LOCAL_RETRY_DELAYS,
) -> str | None:
    """Send with the shared retry rule; None when it went out, else why not."""
    if smtp.settings is None:
        return smtp.problem or "no SMTP settings"
    message = compose(smtp.settings, email, message_id)

    last: list[str] = []

    def record(error: mailing.DeliveryError, retry_in: float | None) -> None:
        last[:] = [str(error)]
        if retry_in is not None:
            notice(f"{what}: {error}; trying again in {retry_in:.0f}s")

    sent = await mailing.deliver(smtp.settings, message, on_failure=record, delays=delays)
    return None if sent else (last[0] if last else "not sent")
