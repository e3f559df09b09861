"""The SQL sensor's poke (kascade.integrations.pokes.sql_poke) against a real PostgreSQL."""

from __future__ import annotations

import time
import uuid

import pytest

import servers
from kascade.integrations.pokes import PokeError, sql_poke
from kascade.integrations.settings import PostgresSettings


def settings(server: servers.PostgresServer, **extra: str) -> PostgresSettings:
    return PostgresSettings.from_data(server.settings(**extra), "test secret")


@pytest.fixture
def table(postgres_server: servers.PostgresServer) -> str:
    """A fresh table per test, so tests never see each other's rows."""
    name = f"loads_{uuid.uuid4().hex[:8]}"
    postgres_server.execute(f"CREATE TABLE {name} (day date, rows int)")
    return name


def test_not_met_until_the_row_arrives(postgres_server: servers.PostgresServer, table: str) -> None:
    query = f"SELECT count(*) FROM {table} WHERE day = '2024-01-01'"
    assert sql_poke(settings(postgres_server), query) is False
    postgres_server.execute(f"INSERT INTO {table} VALUES ('2024-01-01', 10)")
    assert sql_poke(settings(postgres_server), query) is True


@pytest.mark.parametrize(
    ("select", "met"),
    [("NULL", False), ("0", False), ("'0'", False), ("''", False), ("false", False),
     ("0.0", False), ("1", True), ("'ready'", True), ("now()", True), ("true", True)],
)  # fmt: skip
def test_first_cell_values_from_postgres(
    postgres_server: servers.PostgresServer, select: str, met: bool
) -> None:
    assert sql_poke(settings(postgres_server), f"SELECT {select}") is met


def test_no_row_is_not_met_and_parameters_are_bound(
    postgres_server: servers.PostgresServer, table: str
) -> None:
    postgres_server.execute(f"INSERT INTO {table} VALUES ('2024-01-02', 5)")
    query = f"SELECT rows FROM {table} WHERE day = %s"
    assert sql_poke(settings(postgres_server), query, ("2024-01-02",)) is True
    assert sql_poke(settings(postgres_server), query, ("2024-01-03",)) is False
    # A value that looks like SQL stays a value.
    text_query = f"SELECT rows FROM {table} WHERE day::text = %s"
    assert (
        sql_poke(settings(postgres_server), text_query, (f"x'; DROP TABLE {table}; --",)) is False
    )
    assert postgres_server.execute(f"SELECT count(*) FROM {table}") == [(1,)]


def test_the_poke_cannot_write(postgres_server: servers.PostgresServer, table: str) -> None:
    with pytest.raises(PokeError) as info:
        sql_poke(settings(postgres_server), f"INSERT INTO {table} VALUES (now(), 1) RETURNING 1")
    assert "read-only transaction" in str(info.value)
    assert info.value.transient is False
    assert postgres_server.execute(f"SELECT count(*) FROM {table}") == [(0,)]


def test_bad_sql_is_a_permanent_error(postgres_server: servers.PostgresServer) -> None:
    with pytest.raises(PokeError, match='sql: relation "no_such_table" does not exist') as info:
        sql_poke(settings(postgres_server), "SELECT 1 FROM no_such_table")
    assert info.value.transient is False
    with pytest.raises(PokeError, match="the query is empty"):
        sql_poke(settings(postgres_server), "  ")


def test_statement_timeout_cancels_a_slow_query(postgres_server: servers.PostgresServer) -> None:
    started = time.monotonic()
    with pytest.raises(PokeError, match="statement timeout") as info:
        sql_poke(settings(postgres_server), "SELECT pg_sleep(30)", timeout=0.5)
    assert time.monotonic() - started < 10
    assert info.value.transient is True


def test_refused_login_is_permanent_and_hides_the_password(
    postgres_server: servers.PostgresServer,
) -> None:
    with pytest.raises(PokeError) as info:
        sql_poke(settings(postgres_server, password="wrong-password-42"), "SELECT 1")
    assert "password authentication failed" in str(info.value)
    assert "wrong-password-42" not in str(info.value)
    assert postgres_server.password not in str(info.value)
    assert info.value.transient is False


def test_a_database_that_is_down_is_transient(postgres_server: servers.PostgresServer) -> None:
    port = servers.free_port(("127.0.0.1",))
    started = time.monotonic()
    with pytest.raises(PokeError, match="Connection refused") as info:
        sql_poke(settings(postgres_server, port=str(port)), "SELECT 1")
    assert info.value.transient is True
    assert time.monotonic() - started < 10


def test_uri_settings(postgres_server: servers.PostgresServer) -> None:
    s = postgres_server
    uri = f"postgresql://{s.user}:{s.password}@127.0.0.1:{s.port}/{s.database}?sslmode=disable"
    assert sql_poke(PostgresSettings.from_data({"uri": uri}, "test"), "SELECT 1") is True
