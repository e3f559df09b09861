"""One attempt of a task as a local process: argv, environment, log file, outputs.

Mirrors what the operator puts in a pod (the image is ignored locally), so a
task that works with ``kascade run`` behaves the same on Kubernetes: same
environment variables, same outputs file protocol, same 4 KiB limit.
"""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Callable
from pathlib import Path

from kascade.api.pipeline import Task
from kascade.api.protocol import OUTPUTS_LIMIT_BYTES, SENSOR_NOT_MET
from kascade.api.runs import AttemptReason
from kascade.engine import environment
from kascade.engine.context import RunContext
from kascade.engine.decisions import Launch, Result
from kascade.engine.outputs import OutputsError, parse_outputs, too_large
from kascade.integrations.outputs_store import OutputsStore
from kascade.local import large_outputs, processes

DEFAULT_INTERPRETER = ("sh", "-e")


class Workspace:
    """One directory per run, so its logs, scripts and outputs can be read or deleted together.

    Directories are made once and remembered: a mkdir per attempt adds up on wide runs.
    """

    def __init__(self, root: Path, base_env: dict[str, str], cwd: str) -> None:
        self.root = root
        self.base_env = base_env
        self.cwd = cwd
        self._made: set[Path] = set()

    def _dir(self, *parts: str) -> Path:
        path = self.root.joinpath(*parts)
        if path not in self._made:
            path.mkdir(parents=True, exist_ok=True)
            self._made.add(path)
        return path

    def log_path(self, key: str, attempt: int) -> Path:
        return self._dir("logs", key) / f"attempt-{attempt}.log"

    def hook_log_path(self, name: str) -> Path:
        return self._dir("logs", "_notifications") / f"{name}.log"

    def outputs_path(self, key: str, attempt: int) -> Path:
        return self._dir("outputs") / f"{key}.{attempt}"

    def script_path(self, key: str, attempt: int | str) -> Path:
        return self._dir("scripts") / f"{key}.{attempt}"


def argv_for(
    command: list[str] | None, args: list[str] | None, script: str | None, script_file: Path
) -> list[str]:
    """What to exec: the command (no shell), or the script through its interpreter."""
    if script is None:
        argv = [*(command or []), *(args or [])]
        if not argv:
            raise ValueError("the task has no command, args or script")
        return argv
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    shebang = command is None and script.startswith("#!")
    fd = os.open(script_file, flags, 0o755 if shebang else 0o644)
    with os.fdopen(fd, "w") as f:
        f.write(script)
    if shebang:
        return [str(script_file), *(args or [])]
    return [*(command or DEFAULT_INTERPRETER), str(script_file), *(args or [])]


class AttemptRunner:
    """Turns a Launch into a process and its exit into a Result.

    Keeps the last log lines of failed attempts: the engine records only exit codes,
    and a user reading the final table wants to know why.
    """

    def __init__(
        self,
        ws: Workspace,
        warn: Callable[[str, str], None],
        ctx: RunContext,
        store: OutputsStore | None = None,
    ) -> None:
        self.ws = ws
        self.ctx = ctx
        self.store = store
        """Where outputs beyond 4 KiB go (None: the 4 KiB rule stands)."""
        self.warn = warn
        """warn(task_id, message): shown once per task by the runner."""
        self.tails: dict[str, tuple[Path, list[str]]] = {}
        """Instance → (log, last lines) of its latest failed attempt."""

    def env_for(self, launch: Launch, outputs: Path) -> dict[str, str]:
        """This machine's environment with the run's variables and connections, then the
        task's env, then the contract: the precedence a pod has (engine.environment)."""
        spec = launch.spec
        env = dict(self.ws.base_env)
        for var in spec.env or []:
            if var.value is not None:
                env[var.name] = var.value
            elif var.value_from is not None:
                self.warn(launch.task_id, f"env {var.name}: valueFrom is ignored locally")
        if spec.env_from:
            self.warn(launch.task_id, "envFrom is ignored locally")
        env.update(
            environment.contract(
                pipeline=self.ctx.pipeline,
                run_id=self.ctx.run_id,
                logical_date=self.ctx.logical_date,
                task_id=launch.task_id,
                attempt=launch.attempt,
                map_index=launch.map_index,
                outputs=str(outputs),
                outputs_max=self.store.max_bytes if self.store is not None else None,
            )
        )
        return env

    def _cwd(self, spec: Task, task_id: str) -> str:
        wd = spec.working_dir
        if wd and os.path.isdir(wd):
            return wd
        if wd:
            self.warn(task_id, f"workingDir {wd} does not exist here; using {self.ws.cwd}")
        return self.ws.cwd

    async def run(self, launch: Launch, timeout: float | None, *, append: bool = False) -> Result:
        """One process; ``append`` keeps earlier pokes of the same attempt in its log."""
        key, n, spec = launch.key, launch.attempt, launch.spec
        log = self.ws.log_path(key, n)
        outputs = self.ws.outputs_path(key, n)
        try:
            argv = argv_for(spec.command, spec.args, spec.script, self.ws.script_path(key, n))
            proc = await processes.spawn(
                argv,
                env=self.env_for(launch, outputs),
                cwd=self._cwd(spec, launch.task_id),
                log=log,
                append=append,
                empty=outputs,
            )
        except (OSError, ValueError) as exc:
            message = f"cannot start: {exc}"
            self.tails[key] = (log, [message])
            return Result(127, reason=AttemptReason.START_ERROR, message=message)
        code = await processes.wait_or_kill(proc, timeout)
        if code is None:
            self.tails[key] = (log, processes.tail(log))
            return Result(
                None, reason=AttemptReason.TIMEOUT, message=f"timed out after {timeout:.1f}s"
            )
        if code != 0:
            if not (launch.sensor is not None and code == SENSOR_NOT_MET):
                self.tails[key] = (log, processes.tail(log))
            return Result(code)
        limit = OUTPUTS_LIMIT_BYTES if self.store is None else self.store.max_bytes
        try:
            raw, size = read_bounded(outputs, limit)
        except NotARegularFile as exc:
            return Result(0, reason=AttemptReason.BAD_OUTPUTS, message=str(exc))
        if self.store is None or not large_outputs.needs_store(size):
            return outputs_result(raw, size)
        if size > self.store.max_bytes:
            message = too_large(size, self.store.max_bytes)
            return Result(0, reason=AttemptReason.OUTPUTS_TOO_LARGE, message=message)
        return await asyncio.to_thread(
            large_outputs.large_result, raw, self.store, self.ctx, key, n
        )


class NotARegularFile(Exception):
    """The task replaced its outputs file by a link, a FIFO or a device."""


def read_bounded(path: Path, limit: int) -> tuple[bytes, int]:
    """At most ``limit`` + 1 bytes of the attempt's outputs file, and its whole size (a task
    that wrote 300 MB there costs ``limit`` + 1 bytes), and only from a regular file (not a
    FIFO that would block, nor a link to ``/dev/zero``: NotARegularFile)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    except FileNotFoundError:
        return b"", 0
    except OSError as exc:  # ELOOP: the task made it a symbolic link
        raise NotARegularFile(_not_a_file(path, exc)) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NotARegularFile(_not_a_file(path))
        raw = _read_at_most(fd, limit + 1)
    finally:
        os.close(fd)
    return raw, max(info.st_size, len(raw))


def read_outputs(path: Path) -> Result:
    """The outputs of a file within a termination message's limit."""
    try:
        raw, size = read_bounded(path, OUTPUTS_LIMIT_BYTES)
    except NotARegularFile as exc:
        return Result(0, reason=AttemptReason.BAD_OUTPUTS, message=str(exc))
    return outputs_result(raw, size)


def outputs_result(raw: bytes, size: int) -> Result:
    """Outputs of ``size`` bytes read as ``raw`` (at most the limit and one byte)."""
    if size > OUTPUTS_LIMIT_BYTES:
        return Result(0, reason=AttemptReason.OUTPUTS_TOO_LARGE, message=too_large(size))
    if not raw:
        return Result(0, outputs={})
    try:
        return Result(0, outputs=parse_outputs(raw))
    except OutputsError as exc:
        return Result(0, reason=AttemptReason.BAD_OUTPUTS, message=str(exc))


def _read_at_most(fd: int, limit: int) -> bytes:
    chunks: list[bytes] = []
    left = limit
    while left > 0:
        chunk = os.read(fd, min(left, 65536))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _not_a_file(path: Path, exc: OSError | None = None) -> str:
    why = f" ({exc.strerror})" if exc is not None and exc.strerror else ""
    return f"the outputs file {path} was replaced by something that is not a regular file{why}"
