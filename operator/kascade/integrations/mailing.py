"""E-mail over SMTP: compose a message from a rendered template and send it.

Airflow's ``email``/``email_on_failure`` and ``EmailOperator``: to, cc, subject
and an HTML body, sent with settings from a Secret (:class:`SmtpSettings`).
The caller renders the templates with :func:`render_html` (values are HTML-
escaped, so a task's error text cannot inject markup) and decides about
retries: :class:`DeliveryError` says whether trying again may help. Sending
blocks; the operator runs it in a thread, with the settings' timeout bounding
every network step.
"""

from __future__ import annotations

import asyncio
import html
import re
import smtplib
import ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

from kascade.engine import templating
from kascade.engine.addresses import MAX_RECIPIENTS, RecipientError, parse_recipients
from kascade.integrations.settings import SmtpSettings

__all__ = [
    "MAX_RECIPIENTS",
    "DeliveryError",
    "Email",
    "RecipientError",
    "compose",
    "deliver",
    "message_id",
    "parse_recipients",
    "render_html",
    "send",
]


class DeliveryError(Exception):
    """The server could not be reached or refused the message.

    ``transient`` is True for what may pass (connection refused or reset, timeouts,
    4xx replies) and False for what will not (5xx replies such as a refused
    password or recipient, a certificate that does not verify).
    """

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


@dataclass(frozen=True)
class Email:
    """A rendered e-mail: what the template fields became for one event."""

    to: tuple[str, ...]
    subject: str
    html: str
    cc: tuple[str, ...] = ()
    bcc: tuple[str, ...] = ()
    """In the envelope only: ``send`` gives them to the server, no header shows them."""


def render_html(template: str, ctx: Mapping[str, Any]) -> str:
    """Render ``{{ expr }}`` with every substituted value HTML-escaped."""
    return templating.render(template, ctx, escape=html.escape)


def _plain_text(body: str) -> str:
    """A readable text/plain twin of the HTML body, for clients that do not show HTML."""
    text = re.sub(r"(?is)<(script|style)\b.*?</\1>", "", body)
    text = re.sub(r"(?i)<br\s*/?>|</(p|div|tr|h[1-6]|li)>", "\n", text)
    text = re.sub(r"<[^>]+>", "", text)
    text = html.unescape(text)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(line.rstrip() for line in text.splitlines())).strip()


def compose(settings: SmtpSettings, email: Email, *, message_id: str | None = None) -> EmailMessage:
    """The MIME message: multipart/alternative with a text part and the HTML part.

    ``message_id`` lets the caller derive the Message-ID from (run, task, event), so a
    resend after a restart is recognisable as the same message.
    """
    if not email.to:
        raise RecipientError("to: at least one address is required")
    message = EmailMessage()
    message["From"] = settings.sender
    message["To"] = ", ".join(email.to)
    if email.cc:
        message["Cc"] = ", ".join(email.cc)
    if email.bcc:
        message["Bcc"] = ", ".join(email.bcc)  # smtplib's send_message drops the header
    # Header values may not hold line breaks (header injection); a subject is one line.
    message["Subject"] = " ".join(email.subject.split())
    domain = settings.sender.rsplit("@", 1)[-1]
    message["Message-ID"] = f"<{message_id}@{domain}>" if message_id else make_msgid(domain=domain)
    message.set_content(_plain_text(email.html) or " ")
    message.add_alternative(email.html, subtype="html")
    return message


def _tls_context(settings: SmtpSettings, where: str) -> ssl.SSLContext:
    """The system's CAs plus ``caCert``; an unreadable ``caCert`` is a settings problem."""
    context = ssl.create_default_context()
    if settings.ca_cert:
        try:
            context.load_verify_locations(cadata=settings.ca_cert)
        except (ssl.SSLError, ValueError) as exc:
            raise DeliveryError(
                f"{where}: caCert is not a readable PEM certificate ({exc})", transient=False
            ) from None
    if not settings.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def send(settings: SmtpSettings, message: EmailMessage) -> None:
    """Deliver ``message`` to its To and Cc recipients; raises :class:`DeliveryError`."""
    where = f"smtp {settings.host}:{settings.port}"
    context = _tls_context(settings, where) if settings.security != "none" else None
    try:
        refused = _deliver(settings, message, context, where)
    except (smtplib.SMTPException, OSError) as exc:
        raise _classified(exc, settings, where) from None
    if refused:
        raise DeliveryError(
            f"{where}: some recipients were refused ({_refusals(refused)}); the others got it",
            transient=False,
        )


def _deliver(
    settings: SmtpSettings, message: EmailMessage, context: ssl.SSLContext | None, where: str
) -> dict[str, tuple[int, bytes]]:
    """One SMTP session; what the server refused of the recipients."""
    if settings.security == "tls":
        smtp: smtplib.SMTP = smtplib.SMTP_SSL(
            settings.host, settings.port, timeout=settings.timeout, context=context
        )
    else:
        smtp = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
    with smtp:
        smtp.ehlo()
        if settings.security == "starttls":
            if not smtp.has_extn("starttls"):
                raise DeliveryError(
                    f"{where}: the server does not offer STARTTLS "
                    "(set security: tls for implicit TLS, or none)",
                    transient=False,
                )
            smtp.starttls(context=context)
            smtp.ehlo()
        if settings.user is not None and settings.password is not None:
            smtp.login(settings.user, settings.password)
        return smtp.send_message(message)


def _classified(exc: Exception, settings: SmtpSettings, where: str) -> DeliveryError:
    """Say what went wrong and whether waiting may help (5xx and bad settings will not)."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        return DeliveryError(
            f"{where}: every recipient was refused ({_refusals(exc.recipients)})",
            transient=all(400 <= code < 500 for code in codes),
        )
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return DeliveryError(f"{where}: {exc} (check security, user and password)", transient=False)
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return DeliveryError(
            f"{where}: login as {settings.user!r} refused ({exc.smtp_code})", transient=False
        )
    if isinstance(exc, smtplib.SMTPResponseException):
        error = exc.smtp_error
        reply = error.decode(errors="replace") if isinstance(error, bytes) else str(error)
        return DeliveryError(
            f"{where}: {exc.smtp_code} {reply}", transient=400 <= exc.smtp_code < 500
        )
    if isinstance(exc, ssl.SSLCertVerificationError):
        return DeliveryError(
            f"{where}: TLS certificate not trusted ({exc.verify_message})", transient=False
        )
    if isinstance(exc, ssl.SSLError):
        # Not a TLS server on that port (or the reverse): settings, not a passing fault.
        return DeliveryError(
            f"{where}: TLS handshake failed ({exc.reason or exc}); check security and port",
            transient=False,
        )
    # Refused, reset, timed out, name not resolved, server hung up: may pass.
    return DeliveryError(f"{where}: {type(exc).__name__}: {exc}", transient=True)


def _refusals(recipients: Mapping[str, tuple[int, bytes]]) -> str:
    return "; ".join(
        f"{address}: {code} {reply.decode(errors='replace')}"
        for address, (code, reply) in recipients.items()
    )


RETRY_DELAYS = (10.0, 30.0, 90.0)
"""Waits before trying a transient failure again: four tries in about two minutes."""
LOCAL_RETRY_DELAYS = (2.0, 5.0)
"""The local runner's: ``kascade run`` waits for its alerts before it exits."""
RETRY_DELAYS_ENV = "KASCADE_EMAIL_RETRY_DELAYS"


def retry_delays(environ: Mapping[str, str], default: tuple[float, ...]) -> tuple[float, ...]:
    """``KASCADE_EMAIL_RETRY_DELAYS=10,30,90`` (seconds; empty: no retry), else ``default``."""
    raw = environ.get(RETRY_DELAYS_ENV)
    if raw is None:
        return default
    try:
        delays = tuple(float(part) for part in raw.split(",") if part.strip())
    except ValueError:
        return default
    return tuple(d for d in delays if 0 <= d <= 3600)


def message_id(*parts: object) -> str:
    """A stable Message-ID local part from (run, notification, event, task, attempt): the
    same alert sent again after an operator restart is recognisably the same message."""
    return re.sub(r"[^A-Za-z0-9._+-]+", "-", ".".join(str(p) for p in parts)).strip("-.")[:200]


async def deliver(
    settings: SmtpSettings,
    message: EmailMessage,
    *,
    on_failure: Callable[[DeliveryError, float | None], None],
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    delays: tuple[float, ...] = RETRY_DELAYS,
) -> bool:
    """Send in a thread; a transient failure is tried again after each of ``delays``.

    ``on_failure(error, retry_in)`` hears of every failure (``retry_in`` None: given up).
    True when the message went out. Never raises DeliveryError: the caller reports.
    """
    for delay in (*delays, None):
        try:
            await asyncio.to_thread(send, settings, message)
            return True
        except DeliveryError as exc:
            retry_in = delay if exc.transient else None
            on_failure(exc, retry_in)
            if retry_in is None:
                return False
            await sleep(retry_in)
    return False  # pragma: no cover (the loop returns)
