"""Sensors that need a process or a look at this machine: command, file, http, sql, s3.

``file`` and ``http`` are checked in-process, in a thread (a process per poke would
cost more than the check; the event loop must never wait on a slow disk or server),
with the meaning the pod's shell probes have
(``engine.sensors``; tests/unit/test_sensor_probes.py runs both side by side):
a file glob matches within one directory level, an http answer must have
``expectedStatus`` and hold ``responseContains``. ``sql`` and ``s3`` call the
functions a pod's ``kascade poke`` calls (``integrations.pokes``), in a thread, with
the connection's settings from the run's environment (``CONN_<NAME>_<key>``: the
file's Secret, or your shell). Poke mode loops inside one attempt, waiting as the
sensor's policy says; reschedule mode checks once and lets the engine schedule the
next poke (exit code 100).
"""

from __future__ import annotations

import asyncio
import fnmatch
import glob
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping

from kascade.api.pipeline import Sensor, SensorKind, SensorMode
from kascade.api.protocol import SENSOR_NOT_MET
from kascade.api.runs import AttemptReason
from kascade.engine.decisions import Launch, Result
from kascade.engine.environment import connection_prefix
from kascade.engine.sensors import HTTP_TIMEOUT, SQL_STATEMENT_TIMEOUT, SensorPolicy, s3_target
from kascade.local.attempts import AttemptRunner

_MAX_BODY = 1 << 20


MAX_GLOB_LEVELS = 64
"""Path components of a file sensor's pattern (each is a directory level to walk)."""


class _Stopped(Exception):
    """The poke was abandoned (its attempt was killed): the walk ends at its next entry."""


class _TimeUp(Exception):
    """Past the deadline (not an OSError, which the walk takes as an unreadable folder)."""


def file_met(
    pattern: str, deadline: float | None = None, stop: threading.Event | None = None
) -> bool:
    """A shell glob: ``*``, ``?`` and ``[...]`` match within one directory level (``glob``'s
    rules, hidden names included). Blocking, so run in a thread: the walk looks at the
    clock and at ``stop`` between directory entries, and raises TimeoutError once past
    ``deadline`` (``time.monotonic()``), so a pattern such as ``/**/x`` over a big tree
    ends when its poke's time is up."""
    if pattern.count(os.sep) > MAX_GLOB_LEVELS:
        raise ValueError(f"the pattern has more than {MAX_GLOB_LEVELS} levels")

    def check() -> None:
        if stop is not None and stop.is_set():
            raise _Stopped
        if deadline is not None and time.monotonic() > deadline:
            raise _TimeUp

    try:
        return any(True for _ in _iglob(pattern, check, dironly=False))
    except _TimeUp:
        raise TimeoutError(f"the file poke ran out of time walking {pattern!r}") from None


def _iglob(pattern: str, check: Callable[[], None], *, dironly: bool) -> Iterator[str]:
    """``glob.iglob(pattern, recursive=False)``, one directory entry at a time."""
    dirname, basename = os.path.split(pattern)
    if not glob.has_magic(pattern):
        if (os.path.lexists(pattern) if basename else os.path.isdir(dirname)) and (
            not dironly or os.path.isdir(pattern)
        ):
            yield pattern
        return
    if dirname and dirname != pattern and glob.has_magic(dirname):
        dirs: Iterable[str] = _iglob(dirname, check, dironly=True)
    else:
        dirs = [dirname]
    for folder in dirs:
        if glob.has_magic(basename):
            for name in _names(folder or os.curdir, basename, check, dironly=dironly):
                yield os.path.join(folder, name)
        elif _exists(folder, basename):
            yield os.path.join(folder, basename)


def _exists(folder: str, basename: str) -> bool:
    """glob's literal last part: a name that exists, or (a trailing /) the folder itself."""
    if basename:
        return os.path.lexists(os.path.join(folder, basename))
    return os.path.isdir(folder)


def _names(folder: str, pattern: str, check: Callable[[], None], *, dironly: bool) -> Iterator[str]:
    hidden_too = pattern.startswith(".")
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                check()
                if not hidden_too and entry.name.startswith("."):
                    continue
                if dironly:
                    try:
                        if not entry.is_dir():
                            continue
                    except OSError:
                        continue
                if fnmatch.fnmatch(entry.name, pattern):
                    yield entry.name
    except OSError:
        return


async def file_poke(pattern: str, seconds: float | None) -> bool:
    """:func:`file_met` off the event loop, within ``seconds`` (TimeoutError past them);
    when the poke is cancelled (Ctrl-C, a kill), its walk stops too."""
    stop = threading.Event()
    deadline = None if seconds is None else time.monotonic() + max(seconds, 0.0)
    try:
        return await asyncio.to_thread(file_met, pattern, deadline, stop)
    finally:
        stop.set()


def http_met(sensor: Sensor, timeout: float) -> bool:
    """Blocking; run in a thread. Connection errors mean 'not yet', like a server still starting."""
    import urllib.error  # only runs with http sensors pay for http.client and ssl
    import urllib.request

    request = urllib.request.Request(sensor.url or "", method=sensor.method.upper())
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            status, body = resp.status, resp.read(_MAX_BODY)
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read(_MAX_BODY)
    except (OSError, ValueError):
        return False
    if status != sensor.expected_status:
        return False
    needle = sensor.response_contains
    return needle is None or needle in body.decode("utf-8", errors="replace")


def connection_poke(sensor: Sensor, environ: Mapping[str, str]) -> Result:
    """One sql or s3 poke, as ``kascade poke`` makes it in a pod: met (0), not yet (100),
    the check failed (1) or its settings are wrong (2), with why."""
    from kascade.integrations import pokes, settings
    from kascade.integrations.objectstore import ObjectStore

    prefix = connection_prefix(sensor.connection or "")
    data = settings.from_env(prefix, environ)
    if not data:
        message = (
            f"connection {sensor.connection!r}: no settings (no {prefix}* variables): add its "
            f"Secret to the file, or export {prefix}<key> for each key"
        )
        return Result(2, message=message)
    source = f"connection {sensor.connection} ({prefix}*)"
    try:
        if sensor.kind is SensorKind.SQL:
            pg = settings.PostgresSettings.from_data(data, source)
            timeout = SQL_STATEMENT_TIMEOUT.total_seconds()
            met = pokes.sql_poke(pg, sensor.sql or "", sensor.parameters, timeout=timeout)
        else:
            store = ObjectStore(settings.ObjectStoreSettings.from_data(data, source), sensor.bucket)
            option, value = s3_target(sensor)
            met = pokes.s3_poke(store, **{option: value})
    except settings.SettingsError as exc:
        return Result(2, message=str(exc))
    except pokes.PokeError as exc:
        return Result(1, message=str(exc))
    return Result(0 if met else SENSOR_NOT_MET, outputs={} if met else None)


def _not_met(result: Result) -> bool:
    return result.exit_code == SENSOR_NOT_MET and result.reason is None


async def _probe(
    launch: Launch, sensor: Sensor, attempts: AttemptRunner, timeout: float | None, append: bool
) -> Result:
    if sensor.kind is SensorKind.FILE:
        try:
            met = await file_poke(sensor.path or "", timeout)
        except TimeoutError:
            return Result(None, reason=AttemptReason.TIMEOUT, message="the file poke timed out")
        except ValueError as exc:
            return Result(None, reason=AttemptReason.RUNNER_ERROR, message=f"file sensor: {exc}")
    elif sensor.kind is SensorKind.HTTP:
        limit = HTTP_TIMEOUT.total_seconds()
        limit = limit if timeout is None else min(limit, timeout)
        met = await asyncio.to_thread(http_met, sensor, max(limit, 0.1))
    elif sensor.kind in (SensorKind.SQL, SensorKind.S3):
        return await asyncio.to_thread(connection_poke, sensor, attempts.ws.base_env)
    else:
        return await attempts.run(launch, timeout, append=append)
    return Result(0 if met else SENSOR_NOT_MET, outputs={} if met else None)


async def run_sensor(launch: Launch, attempts: AttemptRunner) -> Result:
    sensor = launch.spec.sensor or launch.sensor
    assert sensor is not None
    policy = launch.sensor_policy or SensorPolicy.of(sensor)
    timeout = launch.timeout.total_seconds() if launch.timeout is not None else None
    if sensor.mode is SensorMode.RESCHEDULE:
        return await _probe(launch, sensor, attempts, timeout, append=launch.poke > 0)
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    pokes = 0
    while True:
        left = None if deadline is None else deadline - loop.time()
        result = await _probe(launch, sensor, attempts, left, append=pokes > 0)
        pokes += 1
        if result.reason is AttemptReason.TIMEOUT:
            return Result(None, reason=AttemptReason.SENSOR_TIMEOUT, message="sensor timed out")
        if not _not_met(result):
            return result
        wait = max(policy.wait_after(pokes).total_seconds(), 0.01)
        if deadline is not None:
            left = deadline - loop.time()
            if left <= 0:
                return Result(None, reason=AttemptReason.SENSOR_TIMEOUT, message="sensor timed out")
            wait = min(wait, left)
        await asyncio.sleep(wait)
