"""The test servers themselves: they start, answer, stop completely, and skip honestly."""

from __future__ import annotations

import os
import socket
import subprocess

import pytest

import servers

pytestmark = pytest.mark.timeout(900)  # may build versitygw on first use


def refused(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(2)
        return probe.connect_ex(("127.0.0.1", port)) != 0


def test_each_server_stops_and_cleans_up() -> None:
    pg = servers.start_postgres()
    s3 = servers.start_s3()
    smtp = servers.start_smtp("starttls")
    try:
        assert pg.execute("SELECT current_user") == [(pg.user,)]
        if os.geteuid() == 0:  # PostgreSQL refuses root; it runs as postgres or nobody
            assert os.stat(f"/proc/{pg.process.popen.pid}").st_uid != 0
        assert not refused(s3.port) and not refused(smtp.port)
    finally:
        for server in (pg, s3, smtp):
            server.stop()
    assert pg.process.popen.poll() is not None and s3.process.popen.poll() is not None
    for server in (pg, s3, smtp):
        assert refused(server.port)
        assert not server.workdir.exists()


def test_missing_software_skips_or_fails_when_required(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CI", "KASCADE_REQUIRE_SERVERS", "KASCADE_E2E_REQUIRE_CLUSTER"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(pytest.skip.Exception, match="no PostgreSQL"):
        servers.unavailable("no PostgreSQL")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"no PostgreSQL .*servers are required"):
        servers.unavailable("no PostgreSQL")


def test_postgres_without_binaries_is_unavailable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: os.PathLike[str]
) -> None:
    monkeypatch.setenv("KASCADE_PG_BINDIR", str(tmp_path))
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("KASCADE_REQUIRE_SERVERS", raising=False)
    monkeypatch.delenv("KASCADE_E2E_REQUIRE_CLUSTER", raising=False)
    with pytest.raises(pytest.skip.Exception, match="PostgreSQL is not installed"):
        servers.start_postgres()


def test_versitygw_build_without_go_exits_3(tmp_path: os.PathLike[str]) -> None:
    """What versitygw_binary() turns into a skip: the script says why and exits 3."""
    script = servers.ROOT / "hack" / "servers" / "build.sh"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "KASCADE_CACHE": str(tmp_path)}
    proc = subprocess.run([str(script)], env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 3, proc.stderr
    assert "no Go toolchain: cannot build versitygw v1.8.0" in proc.stderr
    assert proc.stdout == ""
