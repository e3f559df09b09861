"""Local processes: spawning into their own process group, timeouts, kills, log tails.

Each process gets its own session (``start_new_session``) so that a timeout or
Ctrl-C kills the whole tree a shell script started, not just the shell. Output
goes straight to a log file descriptor: no pipe is read in Python, which keeps
hundreds of parallel tasks cheap.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Mapping, Sequence
from pathlib import Path

KILL_GRACE_SECONDS = 5.0
TAIL_BYTES = 8192


async def spawn(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: str,
    log: Path,
    append: bool = False,
) -> asyncio.subprocess.Process:
    """Start ``argv`` with stdout and stderr in ``log``; OSError if it cannot start."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
    fd = os.open(log, flags, 0o644)
    try:
        return await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=fd,
            stderr=asyncio.subprocess.STDOUT,
            env=dict(env),
            cwd=cwd,
            start_new_session=True,
        )
    finally:
        os.close(fd)  # the child has its own copy; ours would only leak


def _signal_group(pid: int, sig: int) -> bool:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


async def kill_group(proc: asyncio.subprocess.Process, grace: float = KILL_GRACE_SECONDS) -> None:
    """SIGTERM the process group, SIGKILL it after ``grace`` seconds if the leader lingers."""
    if proc.returncode is None and _signal_group(proc.pid, signal.SIGTERM):
        try:
            await asyncio.wait_for(asyncio.shield(proc.wait()), grace)
        except TimeoutError:
            _signal_group(proc.pid, signal.SIGKILL)
            await proc.wait()
    # Children that ignored SIGTERM or outlived the leader go too.
    _signal_group(proc.pid, signal.SIGKILL)


async def wait_or_kill(proc: asyncio.subprocess.Process, timeout: float | None) -> int | None:
    """The exit code, or None when ``timeout`` ran out and the group was killed.

    A cancelled wait (a kill decided by the engine, Ctrl-C) kills the group too,
    so no process outlives the attempt that started it.
    """
    try:
        if timeout is None:
            return await proc.wait()
        return await asyncio.wait_for(asyncio.shield(proc.wait()), max(timeout, 0.0))
    except TimeoutError:
        await kill_group(proc)
        return None
    except asyncio.CancelledError:
        await kill_group(proc)
        raise


def tail(path: Path, lines: int = 20) -> list[str]:
    """The last lines of a log, read from its end so a huge log costs nothing."""
    with contextlib.suppress(OSError), open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - TAIL_BYTES))
        text = f.read().decode("utf-8", errors="replace")
        return text.splitlines()[-lines:]
    return []
