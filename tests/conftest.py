"""Session fixtures for the real servers of tests/servers/, each started on first use.

They listen on loopback; tests/e2e/conftest.py has the same servers reachable from pods.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import servers


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[servers.PostgresServer]:
    server = servers.start_postgres()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[servers.S3Server]:
    server = servers.start_s3()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[servers.SmtpServer]:
    """Plain SMTP, no authentication (a relay on a trusted network)."""
    server = servers.start_smtp("none")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def smtp_starttls_server() -> Iterator[servers.SmtpServer]:
    """STARTTLS required, then AUTH required (submission, port 587 style)."""
    server = servers.start_smtp("starttls")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def smtp_tls_server() -> Iterator[servers.SmtpServer]:
    """Implicit TLS, then AUTH required (submissions, port 465 style)."""
    server = servers.start_smtp("tls")
    yield server
    server.stop()
