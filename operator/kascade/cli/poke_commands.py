"""``kascade poke sql|s3``: one sensor poke, the entry point of a sensor's pod.

The operator runs SQL and S3 sensors as pods of the operator image (so the
check runs with the pipeline's own Secret and network, never the operator's),
and the local runner calls the same functions in-process. Connection settings
come from environment variables with a prefix, which is what
``envFrom: [{secretRef: {name: S}, prefix: CONN_NAME_}]`` makes of Secret S.

Exit codes follow the sensor protocol (kascade.api.protocol): 0 met,
100 not yet, 1 the check failed (message on stderr), 2 bad settings or usage.
"""

from __future__ import annotations

import os
import sys
from typing import NoReturn

import click

EXIT_FAILED = 1
EXIT_USAGE = 2


def _settings_source(prefix: str) -> tuple[dict[str, str], str]:
    from kascade.integrations.settings import from_env

    data = from_env(prefix, os.environ)
    if not data:
        raise click.UsageError(f"no environment variables start with {prefix!r}")
    return data, f"environment {prefix}*"


def _finish(met: bool) -> NoReturn:
    from kascade.api.protocol import SENSOR_NOT_MET

    click.echo("met" if met else "not yet")
    sys.exit(0 if met else SENSOR_NOT_MET)


def _fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    click.echo(f"Error: {message}", err=True)
    sys.exit(code)


_PREFIX = click.option(
    "--settings-prefix",
    "prefix",
    required=True,
    metavar="PREFIX",
    help="Read the connection from environment variables PREFIX<key> (e.g. CONN_WAREHOUSE_).",
)


@click.group("poke")
def poke() -> None:
    """Check a sensor's condition once (exit 0 met, 100 not yet, 1 failed)."""


@poke.command("sql")
@_PREFIX
@click.option(
    "--query", required=True, help="SQL; met when the first cell is not 0, '0', '' or NULL."
)
@click.option(
    "--parameter",
    "parameters",
    multiple=True,
    metavar="VALUE",
    help="A value bound to the query's next %s placeholder (repeatable).",
)
@click.option(
    "--timeout", type=float, default=60.0, show_default=True, help="Statement timeout (s)."
)
def poke_sql(prefix: str, query: str, parameters: tuple[str, ...], timeout: float) -> None:
    """Run a read-only query against PostgreSQL."""
    from kascade.integrations.pokes import PokeError, sql_poke
    from kascade.integrations.settings import PostgresSettings, SettingsError

    data, source = _settings_source(prefix)
    try:
        settings = PostgresSettings.from_data(data, source)
        met = sql_poke(settings, query, list(parameters) or None, timeout=timeout)
    except SettingsError as exc:
        _fail(str(exc), EXIT_USAGE)
    except PokeError as exc:
        _fail(str(exc))
    _finish(met)


@poke.command("s3")
@_PREFIX
@click.option("--bucket", help="The bucket (default: the settings' bucket).")
@click.option("--key", help="Met when this object exists.")
@click.option("--prefix", "key_prefix", help="Met when any object's key starts with this.")
@click.option("--wildcard", help="Met when any key matches this shell pattern (* crosses /).")
def poke_s3(
    prefix: str, bucket: str | None, key: str | None, key_prefix: str | None, wildcard: str | None
) -> None:
    """Look for an object in an S3-compatible store."""
    from kascade.integrations.objectstore import ObjectStore
    from kascade.integrations.pokes import PokeError, s3_poke
    from kascade.integrations.settings import ObjectStoreSettings, SettingsError

    data, source = _settings_source(prefix)
    if sum(1 for value in (key, key_prefix, wildcard) if value) != 1:
        raise click.UsageError("give exactly one of --key, --prefix and --wildcard")
    try:
        store = ObjectStore(ObjectStoreSettings.from_data(data, source), bucket)
        met = s3_poke(store, key=key, prefix=key_prefix, wildcard=wildcard)
    except SettingsError as exc:
        _fail(str(exc), EXIT_USAGE)
    except PokeError as exc:
        _fail(str(exc))
    _finish(met)


def register(cli: click.Group) -> None:
    cli.add_command(poke)
