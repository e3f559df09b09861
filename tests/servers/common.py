"""What every test server shares: skipping honestly, ports, credentials, child processes."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
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


def spawn(name: str, argv: list[str], workdir: Path, env: dict[str, str], **kwargs: Any) -> Process:
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
