"""aiosmtpd servers that record what arrives: plain, STARTTLS and implicit TLS."""

from __future__ import annotations

import email
import email.policy
import shutil
import ssl
import subprocess
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from servers.common import LOOPBACK, free_port, secret_token, unavailable


@dataclass(frozen=True)
class Received:
    """One message as the SMTP server got it."""

    mail_from: str
    recipients: tuple[str, ...]
    message: EmailMessage
    authenticated_as: str | None
    tls: bool

    def html(self) -> str:
        part = self.message.get_body(("html",))
        return str(part.get_content()) if part is not None else ""

    def text(self) -> str:
        part = self.message.get_body(("plain",))
        return str(part.get_content()) if part is not None else ""


class Mailbox:
    """What arrived, in order; an aiosmtpd handler that records and accepts."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self.messages: list[Received] = []

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        """Like a real mailbox server: unknown users are refused, busy ones deferred."""
        if address.startswith("unknown"):
            return "550 5.1.1 No such user"
        if address.startswith("busy"):
            return "451 4.3.0 Mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        received = Received(
            mail_from=envelope.mail_from,
            recipients=tuple(envelope.rcpt_tos),
            message=message,
            authenticated_as=session.auth_data if session.authenticated else None,
            tls=server.transport is not None
            and server.transport.get_extra_info("ssl_object") is not None,
        )
        with self._lock:
            self.messages.append(received)
            self._lock.notify_all()
        return "250 Message accepted for delivery"

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        with self._lock:
            if not self._lock.wait_for(lambda: len(self.messages) >= count, timeout):
                raise TimeoutError(f"{len(self.messages)} messages arrived, expected {count}")
            return list(self.messages)

    def with_subject(self, subject: str) -> list[Received]:
        with self._lock:
            return [m for m in self.messages if m.message["Subject"] == subject]


def _certificate(workdir: Path, addresses: Sequence[str]) -> tuple[Path, Path, str]:
    """A throw-away CA and a server certificate for ``addresses`` and localhost (openssl)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        unavailable("openssl is not installed (make servers installs it)")
    assert openssl is not None
    names = ",".join(["DNS:localhost", *(f"IP:{a}" for a in addresses)])
    ca_key, ca_cert = workdir / "ca.key", workdir / "ca.pem"
    key, csr, cert = workdir / "server.key", workdir / "server.csr", workdir / "server.pem"
    ext = workdir / "server.ext"
    ext.write_text(
        f"subjectAltName={names}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
    )
    steps = [
        ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca_cert,
         "-days", "2", "-subj", "/CN=kascade test CA"],
        ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
         "-subj", "/CN=localhost"],
        ["x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key, "-CAcreateserial",
         "-out", cert, "-days", "2", "-extfile", ext],
    ]  # fmt: skip
    for step in steps:
        subprocess.run([openssl, *map(str, step)], check=True, capture_output=True, cwd=workdir)
    return cert, key, ca_cert.read_text()


@dataclass
class SmtpServer:
    """aiosmtpd on ``addresses``: security none, starttls (auth required) or tls (auth required)."""

    security: str
    addresses: tuple[str, ...]
    port: int
    mailbox: Mailbox
    user: str | None
    password: str | None = field(repr=False)
    ca_cert: str | None
    workdir: Path
    controllers: list[Any]

    def settings(self, host: str | None = None, **extra: str) -> dict[str, str]:
        """Secret data for kascade.integrations.settings.SmtpSettings."""
        data = {
            "host": host or self.addresses[0],
            "port": str(self.port),
            "security": self.security,
            "from": "kascade@example.test",
        }
        if self.user and self.password:
            data.update(user=self.user, password=self.password)
        if self.ca_cert:
            data["caCert"] = self.ca_cert
        return {**data, **extra}

    def stop(self) -> None:
        for controller in self.controllers:
            controller.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


def start_smtp(security: str = "none", addresses: Sequence[str] = LOOPBACK) -> SmtpServer:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    workdir = Path(tempfile.mkdtemp(prefix="kascade-smtp-"))
    mailbox = Mailbox()
    user = password = ca_pem = None
    options: dict[str, Any] = {}
    if security != "none":
        cert, key, ca_pem = _certificate(workdir, addresses)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        user, password = "mailer", secret_token(16)
        expected = (user.encode(), password.encode())

        def authenticator(
            server: Any, session: Any, envelope: Any, mechanism: str, auth: Any
        ) -> AuthResult:
            ok = isinstance(auth, LoginPassword) and (auth.login, auth.password) == expected
            return AuthResult(success=ok, handled=False, auth_data=user if ok else None)

        options.update(authenticator=authenticator, auth_required=True)
        if security == "starttls":
            options.update(tls_context=context, require_starttls=True)
        else:
            # The whole session is TLS; aiosmtpd only counts STARTTLS as TLS for AUTH.
            options.update(ssl_context=context, auth_require_tls=False)
    port = free_port(addresses)
    controllers = []
    try:
        for address in addresses:
            controller = Controller(mailbox, hostname=address, port=port, **options)
            controller.start()
            controllers.append(controller)
    except BaseException:
        for controller in controllers:
            controller.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    return SmtpServer(
        security, tuple(addresses), port, mailbox, user, password, ca_pem, workdir, controllers
    )
