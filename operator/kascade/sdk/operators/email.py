"""``EmailOperator``: the task sends an e-mail (a ``sendEmail`` task; no pod runs).

The operator (or the local runner) sends it over SMTP with the pipeline's SMTP
Secret (``DAG(smtp_secret=...)``, default ``kascade-smtp``), as Airflow's
``send_email`` uses the ``smtp_default`` connection. ``to``, ``cc``, ``bcc``,
``subject`` and ``html_content`` are templated (Airflow's Jinja spellings are
translated); values put into the body are HTML-escaped. Attachments and custom
headers have no equivalent and are refused, naming what to do instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from kascade.sdk.baseoperator import BaseOperator
from kascade.sdk.exceptions import UnsupportedFeature

if TYPE_CHECKING:
    from kascade.sdk.lowering import Lowerer


def _addresses(value: Any, what: str) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return list(value)
    raise TypeError(f"{what} must be an address or a list of addresses, got {value!r}")


class EmailOperator(BaseOperator):
    template_fields: ClassVar[Sequence[str]] = ("to", "subject", "html_content", "files")
    template_fields_renderers: ClassVar[dict[str, str]] = {"html_content": "html"}
    ui_color = "#e6faf9"

    def __init__(
        self,
        *,
        to: Any,
        subject: str,
        html_content: str,
        files: list[str] | None = None,
        cc: Any = None,
        bcc: Any = None,
        mime_subtype: str = "mixed",
        mime_charset: str = "utf-8",
        conn_id: str | None = None,
        custom_headers: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if files:
            raise UnsupportedFeature(
                "EmailOperator(files=...)",
                "attachments are not sent; link to the file (an object store URL) in the body",
            )
        if custom_headers:
            raise UnsupportedFeature("EmailOperator(custom_headers=...)", "not supported")
        if conn_id not in (None, "smtp_default"):
            raise UnsupportedFeature(
                f"EmailOperator(conn_id={conn_id!r})",
                "the SMTP settings are the DAG's: DAG(smtp_secret='<Secret name>')",
            )
        self.to = to
        self.subject = subject
        self.html_content = html_content
        self.files = files
        self.cc = cc
        self.bcc = bcc
        self.mime_subtype = mime_subtype
        self.mime_charset = mime_charset

    def execute(self, context: dict[str, Any]) -> None:
        raise NotImplementedError("the operator (or kascade run) sends the e-mail, not a pod")

    def runs_in_runtime(self) -> bool:
        return False

    def _lower(self, lo: Lowerer) -> dict[str, Any]:
        message: dict[str, Any] = {
            "to": [lo.template(a, "to") for a in _addresses(self.to, "to")],
            "subject": lo.template(self.subject, "subject"),
            "html": lo.template(self.html_content, "html_content"),
        }
        for name in ("cc", "bcc"):
            values = _addresses(getattr(self, name), name)
            if values:
                message[name] = [lo.template(a, name) for a in values]
        return {"sendEmail": message}
