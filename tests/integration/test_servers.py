"""The test servers themselves: they start, answer, stop completely, and skip honestly."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time

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


STARTER = """
import sys, time
sys.path[:0] = sys.argv[1:]
import servers
pg, s3 = servers.start_postgres(), servers.start_s3()
print(pg.process.popen.pid, s3.process.popen.pid, pg.workdir, s3.workdir, flush=True)
time.sleep(600)
"""


def test_servers_end_when_the_test_process_is_killed() -> None:
    """A test run killed without teardown (SIGKILL) leaves no server running."""
    tests_dir = str(servers.ROOT / "tests")
    starter = subprocess.Popen(
        [sys.executable, "-c", STARTER, tests_dir, str(servers.ROOT / "operator")],
        stdout=subprocess.PIPE,
        text=True,
    )
    workdirs: list[str] = []
    try:
        assert starter.stdout is not None
        first, second, *workdirs = starter.stdout.readline().split()
        pids = [int(first), int(second)]
        assert all(alive(pid) for pid in pids)
    finally:
        starter.kill()
        starter.wait()
    try:
        deadline = time.monotonic() + 20
        while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(alive(pid) for pid in pids), "a server outlived the killed test process"
    finally:
        for workdir in workdirs:  # what the killed process's teardown would have removed
            shutil.rmtree(workdir, ignore_errors=True)


def alive(pid: int) -> bool:
    """Running (a zombie of another parent counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
