"""Sensors that need a process or a look at this machine: command, file, http.

``file`` and ``http`` are checked in-process (a process per poke would cost more
than the check), with the same poke/reschedule logic as ``command`` sensors:
poke mode loops inside one attempt until met or timed out; reschedule mode
checks once and lets the engine schedule the next poke (exit code 100).
"""

from __future__ import annotations

import asyncio
import glob
from datetime import timedelta

from kascade.api.pipeline import Sensor, SensorKind, SensorMode
from kascade.api.protocol import SENSOR_NOT_MET
from kascade.engine.decisions import Launch, Result
from kascade.engine.durations import parse_duration
from kascade.local.attempts import AttemptRunner

HTTP_TIMEOUT_SECONDS = 10.0
DEFAULT_POKE_INTERVAL = timedelta(seconds=60)
_MAX_BODY = 1 << 20


def file_met(pattern: str) -> bool:
    return any(True for _ in glob.iglob(pattern, recursive=True))


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


def _interval(sensor: Sensor) -> float:
    value = parse_duration(sensor.poke_interval) if sensor.poke_interval else DEFAULT_POKE_INTERVAL
    return max(value.total_seconds(), 0.01)


def _not_met(result: Result) -> bool:
    return result.exit_code == SENSOR_NOT_MET and result.reason is None


async def _probe(
    launch: Launch, sensor: Sensor, attempts: AttemptRunner, timeout: float | None, append: bool
) -> Result:
    if sensor.kind is SensorKind.FILE:
        met = file_met(sensor.path or "")
    elif sensor.kind is SensorKind.HTTP:
        limit = HTTP_TIMEOUT_SECONDS if timeout is None else min(HTTP_TIMEOUT_SECONDS, timeout)
        met = await asyncio.to_thread(http_met, sensor, max(limit, 0.1))
    else:
        return await attempts.run(launch, timeout, append=append)
    return Result(0 if met else SENSOR_NOT_MET, outputs={} if met else None)


async def run_sensor(launch: Launch, attempts: AttemptRunner) -> Result:
    sensor = launch.spec.sensor or launch.sensor
    assert sensor is not None
    timeout = launch.timeout.total_seconds() if launch.timeout is not None else None
    if sensor.mode is SensorMode.RESCHEDULE:
        return await _probe(launch, sensor, attempts, timeout, append=launch.poke > 0)
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    interval = _interval(sensor)
    pokes = 0
    while True:
        left = None if deadline is None else deadline - loop.time()
        result = await _probe(launch, sensor, attempts, left, append=pokes > 0)
        pokes += 1
        if result.reason == "Timeout":
            return Result(None, reason="SensorTimeout", message="sensor timed out")
        if not _not_met(result):
            return result
        wait = interval * (2 ** min(pokes - 1, 10)) if sensor.exponential_backoff else interval
        if deadline is not None:
            left = deadline - loop.time()
            if left <= 0:
                return Result(None, reason="SensorTimeout", message="sensor timed out")
            wait = min(wait, left)
        await asyncio.sleep(wait)
