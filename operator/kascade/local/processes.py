"""Local processes: spawning into their own process group, exits, timeouts, kills, log tails.

Spawning happens on a small thread pool: ``fork_exec`` releases the GIL while
the child execs, so a fan-out of 100 tasks starts several processes at once
instead of one after another on the event loop. Exits are watched with a
pidfd on the event loop (no thread per child). Each process gets its own
session (``start_new_session``) so that a timeout or Ctrl-C kills the whole
tree a shell script started, not just the shell; when the leader ends, even with
exit 0, its group is killed too, and :mod:`kascade.local.reaper` finds what left
the group (``setsid``). Output goes straight to a log file descriptor: no pipe is
read in Python.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from kascade.local.reaper import TOKEN_ENV, Reaper

KILL_GRACE_SECONDS = 5.0
TAIL_BYTES = 8192
SPAWN_THREADS = 8
"""Measured on 2 cores: a 50-wide layer starts ~25% faster than with 4, no gain beyond 8."""

_spawner: ThreadPoolExecutor | None = None
REAPER = Reaper()
"""The one reaper of this process: :meth:`Reaper.start` (the local runner) turns it on."""
_tokens = itertools.count(1)
SWEEP_GAP = 0.05
"""Seconds between two sweeps at least (four times a sweep's own duration if longer):
a wide run ends many attempts at once, and one sweep serves them all."""


def _pool() -> ThreadPoolExecutor:
    global _spawner
    if _spawner is None:
        _spawner = ThreadPoolExecutor(SPAWN_THREADS, thread_name_prefix="kascade-spawn")
    return _spawner


class Child:
    """A started process; ``wait`` may be awaited any number of times.

    When it exits, what is left of its process group is killed before it is reaped
    (its pid, and so the group's id, cannot be reused before that), and a sweep for
    processes that left the group is asked for.
    """

    def __init__(self, popen: subprocess.Popen[bytes], token: str = "") -> None:
        self.popen = popen
        self.pid = popen.pid
        self.token = token
        self._exit: asyncio.Future[int] | None = None

    @property
    def returncode(self) -> int | None:
        return self.popen.returncode

    async def wait(self) -> int:
        if self._exit is None:
            self._exit = self._watch()
        return await asyncio.shield(self._exit)

    def _watch(self) -> asyncio.Future[int]:
        loop = asyncio.get_running_loop()
        try:
            fd = os.pidfd_open(self.pid)
        except (AttributeError, OSError):
            waited = loop.run_in_executor(None, self.popen.wait)  # no pidfd: a thread waits
            waited.add_done_callback(lambda _: self._ended())
            return waited
        exited: asyncio.Future[int] = loop.create_future()

        def ready() -> None:
            loop.remove_reader(fd)
            os.close(fd)
            # A zombie now: its group id is still ours to kill (``sleep 300 &``).
            _signal_group(self.pid, signal.SIGKILL)
            code = self.popen.wait()  # it has exited: this only reaps it
            self._ended()
            if not exited.done():
                exited.set_result(code)

        loop.add_reader(fd, ready)
        return exited

    def _ended(self) -> None:
        REAPER.ended_attempt(self.token, self.pid)
        SWEEPS.request()


class _Sweeps:
    """Runs :meth:`Reaper.sweep` in a thread, one at a time; requests made while one runs
    are served by one more sweep after it."""

    def __init__(self) -> None:
        self.task: asyncio.Task[None] | None = None
        self.again = False

    def request(self) -> None:
        if not REAPER.active:
            return
        loop = asyncio.get_running_loop()
        if self.task is not None and not self.task.done() and self.task.get_loop() is loop:
            self.again = True
            return
        self.task = loop.create_task(self._run())

    async def _run(self) -> None:
        while True:
            self.again = False
            began = time.monotonic()
            await asyncio.to_thread(REAPER.sweep)
            if not self.again:
                return
            await asyncio.sleep(max(SWEEP_GAP, 4 * (time.monotonic() - began)))

    async def drain(self) -> None:
        """Wait for the sweep under way, if any (the run is ending)."""
        task, self.task = self.task, None
        if task is not None and task.get_loop() is asyncio.get_running_loop():
            await asyncio.gather(task, return_exceptions=True)


SWEEPS = _Sweeps()


def kill_all_now() -> None:
    """SIGKILL every running attempt's group at once (a second Ctrl-C: no grace)."""
    with REAPER.lock:
        leaders = list(REAPER.leaders)
    for pid in leaders:  # not reaped yet: the ids are still theirs
        _signal_group(pid, signal.SIGKILL)


def raise_fd_limit(wanted: int = 65536) -> None:
    """Each running task holds a pidfd: lift the usual soft limit of 1024 towards the hard one."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def exit_status(code: int) -> int:
    """A shell's view of a signal death (SIGTERM → 143), as Kubernetes reports it too."""
    return 128 - code if code < 0 else code


async def spawn(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: str,
    log: Path,
    append: bool = False,
    empty: Path | None = None,
) -> Child:
    """Start ``argv`` with stdout and stderr in ``log``; OSError if it cannot start.

    ``empty`` is a file to create or truncate first (the outputs file): like the
    log's, that system call is made on the spawning thread, off the event loop.
    """
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
    token = f"{os.getpid()}.{next(_tokens)}"
    env = {**env, TOKEN_ENV: token}

    def start() -> subprocess.Popen[bytes]:
        if empty is not None:
            os.close(os.open(empty, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644))
        fd = os.open(log, flags, 0o644)
        try:
            popen = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=fd,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=cwd,
                start_new_session=True,
            )
        finally:
            os.close(fd)  # the child has its own copy; ours would only leak
        REAPER.started(popen.pid)
        return popen

    started = asyncio.get_running_loop().run_in_executor(_pool(), start)
    try:
        return Child(await asyncio.shield(started), token)
    except asyncio.CancelledError:
        # Killed while starting: the process may still appear; it must not outlive us.
        with contextlib.suppress(OSError):
            await kill_group(Child(await started, token))
        raise


def _signal_group(pid: int, sig: int) -> bool:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


async def kill_group(child: Child, grace: float | None = None) -> None:
    """SIGTERM the process group, SIGKILL it after ``grace`` seconds if the leader lingers."""
    if child.returncode is None and _signal_group(child.pid, signal.SIGTERM):
        try:
            await asyncio.wait_for(child.wait(), KILL_GRACE_SECONDS if grace is None else grace)
        except TimeoutError:
            _signal_group(child.pid, signal.SIGKILL)
            await child.wait()
    # Children that ignored SIGTERM or outlived the leader were killed as it was reaped
    # (Child._watch); those that left its group go with the sweep it asked for.
    await child.wait()


async def wait_or_kill(child: Child, timeout: float | None) -> int | None:
    """The exit status, or None when ``timeout`` ran out and the group was killed.

    A cancelled wait (a kill decided by the engine, Ctrl-C) kills the group too,
    so no process outlives the attempt that started it.
    """
    try:
        if timeout is None:
            return exit_status(await child.wait())
        return exit_status(await asyncio.wait_for(child.wait(), max(timeout, 0.0)))
    except TimeoutError:
        await kill_group(child)
        return None
    except asyncio.CancelledError:
        await kill_group(child)
        raise


TAIL_LINE = 300
"""Characters of one tail line shown; a longer line (a minified JSON dump, a progress bar
redrawn with ``\r``) is cut, saying by how much."""


def tail(path: Path, lines: int = 20) -> list[str]:
    """The last lines of a log, read from its end so a huge log costs nothing; each cut
    to :data:`TAIL_LINE` characters."""
    with contextlib.suppress(OSError), open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - TAIL_BYTES))
        text = f.read().decode("utf-8", errors="replace")
        return [_cut(line) for line in text.splitlines()[-lines:]]
    return []


def _cut(line: str) -> str:
    if len(line) <= TAIL_LINE:
        return line
    return f"{line[:TAIL_LINE]}… ({len(line) - TAIL_LINE} more characters)"
