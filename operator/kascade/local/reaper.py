"""What an attempt leaves behind is killed when it ends, as a pod's container would be.

On Kubernetes every process of a task shares its container's PID namespace, so nothing
outlives the task's main process. Locally each attempt gets its own session (and so
its own process group), which a kill reaches in one call; that covers ``sleep 300 &``.
A process can leave the group, though (``setsid``, a daemon's double fork), and then
its parent dies and it is re-parented out of reach.

So the local runner makes itself the *child subreaper* of everything it starts
(``prctl(PR_SET_CHILD_SUBREAPER)``, Linux): an orphan of any task becomes the runner's
own child instead of init's. Each attempt's processes carry a token in their
environment (:data:`TOKEN_ENV`), inherited by everything they start, so an orphan is
told apart by its token, or by the process group or session it still shares with the
attempt's leader. :meth:`Reaper.sweep` lists the runner's children that are not task
leaders (``/proc``), kills those of attempts that ended, and repeats until none is left
(killing one re-parents its own children to the runner). It also reaps them: the
runner is their parent now. At the end of the run every orphan goes, token or not.

Without ``/proc`` or the subreaper (not Linux) only the process group is killed.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import threading
import time

TOKEN_ENV = "KASCADE_LOCAL_ATTEMPT"
"""Set in every local attempt's environment; the value names the attempt (runner-private)."""
_PR_SET_CHILD_SUBREAPER = 36
_PR_GET_CHILD_SUBREAPER = 37
_ROUNDS = 50
_ROUND_PAUSE = 0.005


def _prctl() -> object | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def set_subreaper(on: bool) -> bool | None:
    """Turn the subreaper flag on or off; the previous value, or None where unsupported."""
    prctl = _prctl()
    if prctl is None:
        return None
    before = ctypes.c_int(0)
    if prctl(_PR_GET_CHILD_SUBREAPER, ctypes.byref(before), 0, 0, 0) != 0:  # type: ignore[operator]
        return None
    if prctl(_PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0) != 0:  # type: ignore[operator]
        return None
    return bool(before.value)


def _stat(pid: int) -> tuple[str, int, int, int] | None:
    """(state, parent, process group, session) from ``/proc/<pid>/stat``."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields = data.rsplit(b")", 1)[-1].split()
    try:
        return fields[0].decode(), int(fields[1]), int(fields[2]), int(fields[3])
    except (IndexError, ValueError):
        return None


def _token_of(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            environ = f.read()
    except OSError:
        return None
    marker = TOKEN_ENV.encode() + b"="
    for entry in environ.split(b"\0"):
        if entry.startswith(marker):
            return entry[len(marker) :].decode(errors="replace")
    return None


class Reaper:
    """The runner's record of attempts (by token and leader) and the sweep that cleans up."""

    def __init__(self) -> None:
        self.me = os.getpid()
        self.leaders: set[int] = set()
        """Pids of running attempt leaders (started by the runner, reaped by it)."""
        self.ended: dict[str, int] = {}
        """Token of every ended attempt → its leader's pid (= its group and session)."""
        self._group_of: dict[int, str] = {}
        self.lock = threading.Lock()
        self.active = False
        """The subreaper flag is on: orphans come back to the runner."""
        self._before: bool | None = None
        self._children_before: set[int] = set()

    def start(self) -> None:
        """Become the subreaper for this run (remembering what was there before)."""
        self.me = os.getpid()
        self._before = set_subreaper(True)
        self.active = self._before is not None
        self._children_before = set(self._children()) if self.active else set()

    def stop(self) -> None:
        """Kill and reap every orphan of the run, then give the flag back."""
        if self.active:
            self.sweep(final=True)
            set_subreaper(bool(self._before))
        self.active = False

    def started(self, pid: int) -> None:
        with self.lock:
            self.leaders.add(pid)
            # The kernel gives out a pid only once no group or session has that id: an
            # ended attempt's group of the same number is gone, and must not be blamed.
            token = self._group_of.pop(pid, None)
            if token is not None:
                del self.ended[token]

    def ended_attempt(self, token: str, pid: int) -> None:
        with self.lock:
            self.leaders.discard(pid)
            self.ended[token] = pid
            self._group_of[pid] = token

    def _children(self) -> list[int]:
        """Pids whose parent is this process (a scan of ``/proc``)."""
        out: list[int] = []
        try:
            names = os.listdir("/proc")
        except OSError:
            return out
        for name in names:
            if name.isdigit():
                stat = _stat(int(name))
                if stat is not None and stat[1] == self.me:
                    out.append(int(name))
        return out

    def sweep(self, *, final: bool = False) -> int:
        """Kill and reap the orphans of ended attempts (every orphan, when ``final``);
        returns how many processes were killed. Blocking: run it off the event loop."""
        if not self.active:
            return 0
        killed: set[int] = set()
        for _ in range(_ROUNDS):
            with self.lock:
                leaders = set(self.leaders)
                ended = dict(self.ended)
            groups = set(ended.values())
            alive = 0
            for pid in self._children():
                if pid in leaders or pid in self._children_before:
                    continue
                stat = _stat(pid)
                if stat is None:
                    continue
                state, _, pgid, sid = stat
                ours = final or pgid in groups or sid in groups
                if state == "Z":
                    if ours:
                        with contextlib.suppress(ChildProcessError):
                            os.waitpid(pid, os.WNOHANG)
                    continue
                if not ours:
                    token = _token_of(pid)
                    ours = token is not None and token in ended
                if ours:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(pid, signal.SIGKILL)
                        killed.add(pid)
                    alive += 1
            if not alive:
                break
            time.sleep(_ROUND_PAUSE)  # the killed die, and their children come to us
        return len(killed)
