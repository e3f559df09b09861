"""``kascade poke sql|s3``, the command a sensor pod runs, against the real servers.

Settings come from prefixed environment variables (what envFrom makes of a Secret);
the exit code is the sensor protocol: 0 met, 100 not yet, 1 failed, 2 bad settings.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

import servers
from kascade.api.protocol import SENSOR_NOT_MET
from kascade.integrations.objectstore import ObjectStore
from kascade.integrations.settings import ObjectStoreSettings

pytestmark = pytest.mark.timeout(900)  # the first S3 test may build versitygw

OPERATOR = Path(__file__).resolve().parents[2] / "operator"


def poke(kind: str, settings: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONN_")}
    env.update({f"CONN_SRC_{key}": value for key, value in settings.items()})
    env["PYTHONPATH"] = str(OPERATOR)
    return subprocess.run(
        [sys.executable, "-m", "kascade", "poke", kind, "--settings-prefix", "CONN_SRC_", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_sql_poke_exit_codes(postgres_server: servers.PostgresServer) -> None:
    table = f"ready_{uuid.uuid4().hex[:8]}"
    postgres_server.execute(f"CREATE TABLE {table} (ok boolean)")
    query = f"SELECT ok FROM {table}"
    not_yet = poke("sql", postgres_server.settings(), "--query", query)
    assert (not_yet.returncode, not_yet.stdout.strip()) == (SENSOR_NOT_MET, "not yet")
    postgres_server.execute(f"INSERT INTO {table} VALUES (true)")
    met = poke("sql", postgres_server.settings(), "--query", query)
    assert (met.returncode, met.stdout.strip()) == (0, "met")
    failed = poke("sql", postgres_server.settings(), "--query", "SELECT * FROM missing_table")
    assert failed.returncode == 1
    assert failed.stderr.strip() == 'Error: sql: relation "missing_table" does not exist'
    typo = poke("sql", {**postgres_server.settings(), "hots": "x"}, "--query", query)
    assert typo.returncode == 2
    assert "environment CONN_SRC_*: key 'hots': unknown key (did you mean host?)" in typo.stderr
    assert postgres_server.password not in typo.stderr + failed.stderr


def test_s3_poke_exit_codes(s3_server: servers.S3Server) -> None:
    bucket = s3_server.make_bucket()
    wildcard = ("--bucket", bucket, "--wildcard", "landing/2024-01-01/*.csv")
    assert poke("s3", s3_server.settings(), *wildcard).returncode == SENSOR_NOT_MET
    store = ObjectStore(ObjectStoreSettings.from_data(s3_server.settings(), "test"), bucket)
    store.put("landing/2024-01-01/part-0.json", b"{}")
    assert poke("s3", s3_server.settings(), *wildcard).returncode == SENSOR_NOT_MET
    store.put("landing/2024-01-01/part-0.csv", b"a,b\n")
    assert poke("s3", s3_server.settings(), *wildcard).returncode == 0
    key = ("--key", "landing/2024-01-01/part-0.csv")
    assert poke("s3", s3_server.settings(bucket=bucket), *key).returncode == 0
    assert (
        poke(
            "s3", s3_server.settings(), "--bucket", bucket, "--prefix", "landing/2024-01-0"
        ).returncode
        == 0
    )
    denied = poke("s3", s3_server.settings(secretAccessKey="wrong-key-9"), "--bucket", bucket, *key)
    assert denied.returncode == 1 and "403" in denied.stderr
    assert "wrong-key-9" not in denied.stderr
    both = poke("s3", s3_server.settings(), "--bucket", bucket, *key, "--prefix", "x")
    assert both.returncode == 2 and "exactly one of --key, --prefix and --wildcard" in both.stderr
