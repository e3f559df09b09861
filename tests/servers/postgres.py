"""PostgreSQL from Debian's packages, initialised in a temporary folder."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from servers.common import LOOPBACK, Process, free_port, secret_token, spawn, unavailable


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
    process = spawn("postgres", argv, workdir, env, **as_user)
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
