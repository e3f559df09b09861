"""Airflow's notifiers as callbacks: ``SmtpNotifier`` (``send_smtp_notification``).

``on_failure_callback=SmtpNotifier(to="oncall@example.com")`` on a task, in
``default_args`` or on the DAG becomes an ``email`` notification of the Pipeline (no
Python runs for it: the operator or the local runner sends it), with Airflow's
templated ``subject`` and ``html_content`` rendered over the callback context
(``{{ ti.task_id }}``, ``{{ exception }}``, ``{{ ti.log_url }}``...). Unset, they
default to Kascade's alert (try number, exception, log link). The sender is the
SMTP Secret's ``from``; attachments and custom headers are refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from kascade.sdk.exceptions import UnsupportedFeature


class BaseNotifier:
    """Airflow's notifier base: a callable a callback list can hold."""

    template_fields: ClassVar[Sequence[str]] = ()

    def notify(self, context: dict[str, Any]) -> None:
        raise NotImplementedError

    def __call__(self, *args: Any) -> None:
        context = args[0] if len(args) == 1 else {}
        self.notify(context)


def _listed(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return list(value)
    raise TypeError(f"{what} must be an address or a list of addresses, got {value!r}")


class SmtpNotifier(BaseNotifier):
    template_fields: ClassVar[Sequence[str]] = ("to", "subject", "html_content", "cc", "bcc")

    def __init__(
        self,
        *,
        to: str | Sequence[str],
        from_email: str | None = None,
        subject: str | None = None,
        html_content: str | None = None,
        files: list[str] | None = None,
        cc: str | Sequence[str] | None = None,
        bcc: str | Sequence[str] | None = None,
        mime_subtype: str = "mixed",
        mime_charset: str = "utf-8",
        custom_headers: dict[str, Any] | None = None,
        smtp_conn_id: str = "smtp_default",
    ) -> None:
        if from_email is not None:
            raise UnsupportedFeature(
                "SmtpNotifier(from_email=...)", "the sender is the `from` key of the SMTP Secret"
            )
        if files:
            raise UnsupportedFeature("SmtpNotifier(files=...)", "attachments are not sent")
        if custom_headers:
            raise UnsupportedFeature("SmtpNotifier(custom_headers=...)", "not supported")
        if smtp_conn_id != "smtp_default":
            raise UnsupportedFeature(
                f"SmtpNotifier(smtp_conn_id={smtp_conn_id!r})",
                "the SMTP settings are the DAG's: DAG(smtp_secret='<Secret name>')",
            )
        self.to = _listed(to, "to")
        self.cc = _listed(cc, "cc")
        self.bcc = _listed(bcc, "bcc")
        self.subject = subject
        self.html_content = html_content

    def notify(self, context: dict[str, Any]) -> None:
        raise NotImplementedError(
            "compiled into an e-mail notification: the operator (or kascade run) sends it"
        )


send_smtp_notification = SmtpNotifier
