"""Real servers for the tests: PostgreSQL, an S3-compatible store (versitygw) and SMTP.

Nothing here is a mock. The project's own scripts install them (``make servers``:
``hack/servers/deps.sh`` installs Debian's PostgreSQL, ``hack/servers/build.sh``
builds versitygw from its pinned Go module into ``~/.cache/kascade``) and aiosmtpd is
a pinned dev dependency. Each server runs as a child process (or thread) in a
temporary directory with random credentials, listens only on the addresses it is
given (loopback by default; tests/e2e/conftest.py adds the address pods of the
local cluster reach the host at) and is stopped and removed by its fixture.

A server whose software truly cannot exist here (no Go toolchain to build
versitygw, no PostgreSQL package) skips its tests with the reason, unless
servers are required (``CI`` or ``KASCADE_REQUIRE_SERVERS=1`` or
``KASCADE_E2E_REQUIRE_CLUSTER=1``): then it is a failure, as a missing cluster is.
"""

from __future__ import annotations

import email
import email.policy
import os
import pwd
import secrets
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
LOOPBACK = ("127.0.0.1",)
START_TIMEOUT = 60.0


def servers_required() -> bool:
    return (
        os.environ.get("KASCADE_REQUIRE_SERVERS") == "1"
        or os.environ.get("KASCADE_E2E_REQUIRE_CLUSTER") == "1"
        or os.environ.get("CI", "").lower() in ("1", "true", "yes")
    )


def unavailable(reason: str) -> None:
    """Skip (or fail, when servers are required) because the software is not here."""
    if servers_required():
        pytest.fail(f"{reason} (servers are required here: CI / KASCADE_REQUIRE_SERVERS)")
    pytest.skip(reason)


def free_port(addresses: Sequence[str]) -> int:
    """A TCP port free on every address (the kernel picks it on the first)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind((addresses[0], 0))
            port = int(probe.getsockname()[1])
        try:
            for address in addresses[1:]:
                with socket.socket() as other:
                    other.bind((address, port))
        except OSError:
            continue
        return port
    raise RuntimeError(f"no free port on {addresses}")


def secret_token(length: int = 20) -> str:
    return secrets.token_hex(length // 2)


@dataclass
class Process:
    """A server child process with its log file; stop() ends it and only it."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def wait_until(self, ready: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while not ready():
            if not self.alive():
                code = self.popen.returncode
                raise RuntimeError(f"{self.name} exited ({code}) before {what}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name}: timed out waiting for {what}:\n{self.log_tail()}")
            time.sleep(0.1)

    def stop(self, sig: int = 15) -> None:
        if self.alive():
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)


def _spawn(
    name: str, argv: list[str], workdir: Path, env: dict[str, str], **kwargs: Any
) -> Process:
    log = workdir / f"{name}.log"
    # If the test process dies without its teardown (killed, crashed), the kernel sends
    # the server SIGTERM (util-linux setpriv sets the parent-death signal, then execs).
    setpriv = shutil.which("setpriv")
    if setpriv:
        argv = [setpriv, "--pdeathsig", "TERM", "--", *argv]
    with open(log, "ab") as out:
        popen = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", **env},
            cwd=workdir,
            start_new_session=True,  # a Ctrl-C of pytest does not reach it before teardown
            **kwargs,
        )
    return Process(name, popen, log)


# ---------------------------------------------------------------- S3 (versitygw)


def versitygw_binary() -> str:
    """The versitygw binary, built (once, cached) by hack/servers/build.sh."""
    script = ROOT / "hack" / "servers" / "build.sh"
    proc = subprocess.run([str(script)], capture_output=True, text=True, check=False, timeout=1800)
    if proc.returncode == 3:
        unavailable(f"versitygw cannot be built here: {proc.stderr.strip().splitlines()[-1]}")
    if proc.returncode != 0 or not proc.stdout.strip():
        raise RuntimeError(
            f"hack/servers/build.sh failed ({proc.returncode}):\n{proc.stderr[-3000:]}"
        )
    return proc.stdout.strip().splitlines()[-1]


@dataclass
class S3Server:
    """versitygw serving a temporary folder: each top-level folder is a bucket."""

    addresses: tuple[str, ...]
    port: int
    access_key: str
    secret_key: str = field(repr=False)
    data: Path
    process: Process
    workdir: Path

    def endpoint(self, host: str | None = None) -> str:
        return f"http://{host or self.addresses[0]}:{self.port}"

    def settings(self, host: str | None = None, **extra: str) -> dict[str, str]:
        """Secret data for kascade.integrations.settings.ObjectStoreSettings."""
        return {
            "endpoint": self.endpoint(host),
            "region": "us-east-1",
            "accessKeyId": self.access_key,
            "secretAccessKey": self.secret_key,
            **extra,
        }

    def make_bucket(self, name: str | None = None) -> str:
        """A new empty bucket (on the posix backend a bucket is a top-level folder)."""
        name = name or f"b-{secret_token(12)}"
        (self.data / name).mkdir()
        return name

    def stop(self) -> None:
        self.process.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


def start_s3(addresses: Sequence[str] = LOOPBACK) -> S3Server:
    binary = versitygw_binary()
    workdir = Path(tempfile.mkdtemp(prefix="kascade-s3-"))
    data = workdir / "data"
    data.mkdir()
    port = free_port(addresses)
    access, secret = f"kascade{secret_token(8)}", secret_token(32)
    argv = [binary, "--quiet", "--health", "/health"]
    for address in addresses:
        argv += ["--port", f"{address}:{port}"]
    argv += ["posix", str(data)]
    # A clean environment: versitygw reads many generic variables (LOGFILE, WEBHOOK, ...).
    process = _spawn(
        "versitygw", argv, workdir, {"ROOT_ACCESS_KEY": access, "ROOT_SECRET_KEY": secret}
    )
    server = S3Server(tuple(addresses), port, access, secret, data, process, workdir)

    def healthy() -> bool:
        try:
            with urllib.request.urlopen(f"{server.endpoint()}/health", timeout=1) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    try:
        process.wait_until(healthy, "its health endpoint answers")
    except BaseException:
        server.stop()
        raise
    return server


# ---------------------------------------------------------------- PostgreSQL


def postgres_bindir() -> Path | None:
    """Debian's newest /usr/lib/postgresql/N/bin, else where initdb is on PATH."""
    if os.environ.get("KASCADE_PG_BINDIR"):
        return Path(os.environ["KASCADE_PG_BINDIR"])
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def _server_user() -> pwd.struct_passwd | None:
    """PostgreSQL refuses to run as root: use Debian's postgres account, else nobody."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError("running as root and neither a 'postgres' nor a 'nobody' user exists")


@dataclass
class PostgresServer:
    addresses: tuple[str, ...]
    port: int
    user: str
    password: str = field(repr=False)
    database: str
    workdir: Path
    process: Process

    def settings(self, host: str | None = None, **extra: str) -> dict[str, str]:
        """Secret data for kascade.integrations.settings.PostgresSettings."""
        return {
            "host": host or self.addresses[0],
            "port": str(self.port),
            "database": self.database,
            "user": self.user,
            "password": self.password,
            "sslmode": "disable",
            **extra,
        }

    def execute(
        self, sql: str, params: Sequence[Any] | None = None, *, database: str | None = None
    ) -> list[tuple[Any, ...]]:
        """Run one statement as the superuser (autocommit) and return its rows."""
        import psycopg

        with psycopg.connect(
            host=self.addresses[0],
            port=self.port,
            dbname=database or self.database,
            user=self.user,
            password=self.password,
            autocommit=True,
        ) as conn:
            cursor = conn.execute(sql, params)  # type: ignore[arg-type]
            return list(cursor.fetchall()) if cursor.description else []

    def stop(self) -> None:
        self.process.stop(sig=2)  # SIGINT: PostgreSQL's fast shutdown
        shutil.rmtree(self.workdir, ignore_errors=True)


def start_postgres(addresses: Sequence[str] = LOOPBACK) -> PostgresServer:
    bindir = postgres_bindir()
    if bindir is None or not (bindir / "postgres").exists():
        unavailable("PostgreSQL is not installed (make servers installs Debian's postgresql-15)")
    assert bindir is not None
    account = _server_user()
    workdir = Path(tempfile.mkdtemp(prefix="kascade-pg-"))
    data = workdir / "data"
    user, password, database = "kascade", secret_token(24), "kascade"
    pwfile = workdir / "pwfile"
    pwfile.write_text(password + "\n")
    as_user: dict[str, Any] = {}
    if account is not None:
        os.chown(workdir, account.pw_uid, account.pw_gid)
        os.chown(pwfile, account.pw_uid, account.pw_gid)
        as_user = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
    env = {"HOME": str(workdir)}
    initdb = subprocess.run(
        [str(bindir / "initdb"), "-D", str(data), "-U", user, f"--pwfile={pwfile}",
         "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C", "--no-sync"],
        cwd=workdir, env={"PATH": "/usr/bin:/bin", **env}, capture_output=True, text=True,
        check=False, **as_user,
    )  # fmt: skip
    pwfile.unlink()
    if initdb.returncode != 0:
        shutil.rmtree(workdir, ignore_errors=True)
        raise RuntimeError(f"initdb failed:\n{initdb.stdout}\n{initdb.stderr}")
    # Password logins from anywhere the server listens (loopback, the pods' subnet).
    (data / "pg_hba.conf").write_text(
        "local all all scram-sha-256\n"
        "host all all 0.0.0.0/0 scram-sha-256\n"
        "host all all ::/0 scram-sha-256\n"
    )
    port = free_port(addresses)
    argv = [
        str(bindir / "postgres"), "-D", str(data), "-p", str(port),
        "-c", f"listen_addresses={','.join(addresses)}",
        "-c", f"unix_socket_directories={workdir}",
        "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
        "-c", "max_connections=50", "-c", "shared_buffers=16MB",
    ]  # fmt: skip
    process = _spawn("postgres", argv, workdir, env, **as_user)
    server = PostgresServer(tuple(addresses), port, user, password, database, workdir, process)

    def accepting() -> bool:
        try:
            server.execute("SELECT 1", database="postgres")
            return True
        except Exception:
            return False

    try:
        process.wait_until(accepting, "it accepts connections")
        server.execute(f"CREATE DATABASE {database}", database="postgres")
    except BaseException:
        server.stop()
        raise
    return server


# ---------------------------------------------------------------- SMTP (aiosmtpd)


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
