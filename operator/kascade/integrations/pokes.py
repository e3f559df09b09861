"""The SQL and S3 sensors' poke: one check, answered met / not yet / error.

The same functions serve the local runner (in-process) and a task pod on the
cluster (``kascade poke sql|s3``, in the operator image), so a sensor means
the same thing in both places.

- SQL (Airflow's ``SqlSensor``): run the query; met when the first cell of the
  first row is not one of ``0, '0', '', None, False``; no row means not yet.
  The query runs in a read-only transaction that is rolled back, with a
  statement timeout: a sensor observes, it never writes.
- S3 (Airflow's ``S3KeySensor``): met when an object exists at ``key``, or any
  object whose key starts with ``prefix``, or any key matching the shell-style
  ``wildcard`` (``*`` also crosses ``/``, as in Airflow's ``wildcard_match``).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from typing import Any

from kascade.integrations.objectstore import ObjectStore, ObjectStoreError
from kascade.integrations.settings import PostgresSettings

__all__ = ["PokeError", "first_cell_met", "s3_poke", "sql_poke", "wildcard_prefix"]


class PokeError(Exception):
    """The check itself failed (bad query, store or database unreachable): not a 'not yet'.

    ``transient`` says whether trying again later may help (the server is down)
    or not (the query is wrong, the credentials are refused).
    """

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


def first_cell_met(rows: Sequence[Sequence[Any]]) -> bool:
    """Airflow's rule: met unless there is no row or the first cell is 0, '0', '', None."""
    if not rows or not rows[0]:
        return False
    cell = rows[0][0]
    if isinstance(cell, str):
        return cell.strip() not in ("", "0")
    return bool(cell)  # None, False, 0, 0.0, Decimal(0) are not met


def sql_poke(
    settings: PostgresSettings,
    query: str,
    parameters: Sequence[Any] | Mapping[str, Any] | None = None,
    *,
    timeout: float = 60.0,
) -> bool:
    """Run ``query`` once, read-only, and apply :func:`first_cell_met` to its rows.

    ``timeout`` bounds the statement (PostgreSQL cancels it); connecting is
    bounded by the settings' ``connectTimeout``. Raises :class:`PokeError`.
    """
    try:
        import psycopg
    except ImportError as exc:  # psycopg loads libpq when imported
        raise PokeError(
            f"sql: the PostgreSQL client cannot load ({exc}); install libpq "
            "(Debian: apt-get install libpq5)",
            transient=False,
        ) from None
    if not query.strip():
        raise PokeError("sql: the query is empty", transient=False)
    try:
        with psycopg.connect(**_connect_args(settings)) as conn:
            conn.read_only = True  # BEGIN READ ONLY: the query cannot write
            with conn.cursor() as cursor:
                # Local to this transaction; plain SQL, so poolers such as pgbouncer accept it.
                cursor.execute(
                    "SELECT set_config('statement_timeout', %s, true)",
                    (str(max(int(timeout * 1000), 1)),),
                )
                cursor.execute(query, parameters)  # type: ignore[arg-type]
                rows = cursor.fetchmany(1) if cursor.description else []
            conn.rollback()
    except psycopg.OperationalError as exc:
        # Connection refused, server shutting down, authentication failed, cancelled.
        raise PokeError(f"sql: {_first_line(exc)}", transient=_transient(exc)) from None
    except psycopg.Error as exc:
        raise PokeError(f"sql: {_first_line(exc)}", transient=False) from None
    return first_cell_met(rows)


def _connect_args(settings: PostgresSettings) -> dict[str, Any]:
    args: dict[str, Any] = {
        "connect_timeout": max(round(settings.connect_timeout), 1),
        "application_name": "kascade-sensor",
    }
    if settings.uri is not None:
        return {"conninfo": settings.uri, **args}
    args.update(host=settings.host, port=settings.port, sslmode=settings.sslmode)
    for key, value in (
        ("dbname", settings.database),
        ("user", settings.user),
        ("password", settings.password),
    ):
        if value is not None:
            args[key] = value
    return args


_PERMANENT_CONNECT_ERRORS = (
    "password authentication failed",
    "no pg_hba.conf entry",
    "does not exist",  # role or database
    "certificate verify failed",
)


def _transient(exc: Exception) -> bool:
    """A refused login or a missing database will not heal by waiting; the rest may.

    libpq reports connection failures without an SQLSTATE, so its text is read.
    """
    sqlstate = getattr(exc, "sqlstate", None) or ""
    if sqlstate.startswith("28") or sqlstate == "3D000":
        return False
    text = str(exc)
    return not any(marker in text for marker in _PERMANENT_CONNECT_ERRORS)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def wildcard_prefix(pattern: str) -> str:
    """The literal part of a wildcard before its first ``*``, ``?`` or ``[``: what to list."""
    cut = min((i for i in (pattern.find(c) for c in "*?[") if i >= 0), default=len(pattern))
    return pattern[:cut]


def s3_poke(
    store: ObjectStore,
    *,
    key: str | None = None,
    prefix: str | None = None,
    wildcard: str | None = None,
) -> bool:
    """Met when the object exists (``key``), or any object under ``prefix`` or matching
    ``wildcard`` exists. Exactly one of the three is given. Raises :class:`PokeError`."""
    given = [
        name for name, value in (("key", key), ("prefix", prefix), ("wildcard", wildcard)) if value
    ]
    if len(given) != 1:
        raise PokeError("s3: give exactly one of key, prefix and wildcard", transient=False)
    try:
        if key:
            return store.exists(key)
        if prefix:
            return any(True for _ in store.list(prefix))
        assert wildcard is not None
        return any(
            fnmatch.fnmatchcase(info.key, wildcard)
            for info in store.list(wildcard_prefix(wildcard))
        )
    except ObjectStoreError as exc:
        raise PokeError(f"s3: {exc}", transient=True) from None
