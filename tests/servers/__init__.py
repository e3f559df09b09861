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

from servers.common import (
    LOOPBACK,
    ROOT,
    Process,
    free_port,
    secret_token,
    servers_required,
    unavailable,
)
from servers.postgres import PostgresServer, postgres_bindir, start_postgres
from servers.s3 import S3Server, start_s3, versitygw_binary
from servers.smtp import Mailbox, Received, SmtpServer, start_smtp

__all__ = [
    "LOOPBACK",
    "ROOT",
    "Mailbox",
    "PostgresServer",
    "Process",
    "Received",
    "S3Server",
    "SmtpServer",
    "free_port",
    "postgres_bindir",
    "secret_token",
    "servers_required",
    "start_postgres",
    "start_s3",
    "start_smtp",
    "unavailable",
    "versitygw_binary",
]
