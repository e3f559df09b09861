"""Sensor policy: one set of rules for the engine, the local runner and the pods.

* **Defaults.** A sensor pokes every 60 s and gives up 7 days after its first poke.
* **Backoff.** With ``exponentialBackoff`` the wait after the n-th poke that is not met
  is ``pokeInterval * 2**(n-1)``, doubling at most 10 times, never past the timeout.
* **Who pokes which kind** (:data:`KINDS`): the engine itself (time, datetime,
  externalTask: no process), the driver (file, http: in-process locally, a small shell
  probe in a pod; sql, s3: in-process locally, ``kascade poke`` in a pod of the operator's
  helper image, with the pipeline connection's Secret as its environment) or the task's own
  container (command).
* **How a pod pokes** (:func:`pod_command`): the shell probes for ``file`` and ``http``,
  and the loop of ``mode: poke``, generated from the same policy as the local runner's.

Durations are parsed once, when the pipeline is compiled (:meth:`SensorPolicy.of`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from enum import Enum

from kascade.api import defaults
from kascade.api.pipeline import Sensor, SensorKind, SensorMode
from kascade.api.protocol import SENSOR_NOT_MET
from kascade.engine.context import ExternalLookup, RunContext
from kascade.engine.durations import MAX_DURATION, parse_duration
from kascade.engine.environment import connection_prefix
from kascade.engine.run_dates import read_date
from kascade.engine.schedule import zone

MAX_BACKOFF_DOUBLINGS = 10
HTTP_TIMEOUT = timedelta(seconds=10)
"""One http poke waits this long for an answer at most (then it is "not yet")."""


class Poker(Enum):
    """Who checks a sensor's condition."""

    ENGINE = "engine"
    """The engine decides from the clock or other runs: no process, no pod."""
    DRIVER = "driver"
    """A built-in check: in-process in the local runner, a shell probe in a pod."""
    TASK = "task"
    """The task's own container is the poke (exit 0 met, 100 not yet)."""


@dataclass(frozen=True)
class KindInfo:
    poker: Poker
    required: tuple[str, str] | None
    """(field, wire name) the kind cannot do without."""
    helper: bool = False
    """A pod pokes with ``kascade poke`` in the operator's helper image, not the task's."""

    @property
    def needs_image(self) -> bool:
        return self.poker is not Poker.ENGINE and not self.helper

    @property
    def needs_command(self) -> bool:
        return self.poker is Poker.TASK


KINDS: dict[SensorKind, KindInfo] = {
    SensorKind.COMMAND: KindInfo(Poker.TASK, None),
    SensorKind.FILE: KindInfo(Poker.DRIVER, ("path", "path")),
    SensorKind.HTTP: KindInfo(Poker.DRIVER, ("url", "url")),
    SensorKind.SQL: KindInfo(Poker.DRIVER, ("sql", "sql"), helper=True),
    SensorKind.S3: KindInfo(Poker.DRIVER, None, helper=True),
    SensorKind.EXTERNAL_TASK: KindInfo(Poker.ENGINE, ("pipeline", "pipeline")),
    SensorKind.TIME: KindInfo(Poker.ENGINE, ("target_time", "targetTime")),
    SensorKind.DATETIME: KindInfo(Poker.ENGINE, ("target_time", "targetTime")),
}


@dataclass(frozen=True)
class SensorPolicy:
    """A sensor's timing, with every default applied and every duration parsed."""

    kind: SensorKind
    mode: SensorMode
    interval: timedelta
    timeout: timedelta
    exponential: bool
    soft_fail: bool
    logical_date_offset: timedelta

    @classmethod
    def of(cls, sensor: Sensor) -> SensorPolicy:
        """Raises ValueError (naming the value) on a duration that does not parse."""
        return cls(
            kind=sensor.kind,
            mode=sensor.mode,
            interval=(
                parse_duration(sensor.poke_interval)
                if sensor.poke_interval is not None
                else defaults.POKE_INTERVAL
            ),
            timeout=(
                parse_duration(sensor.timeout)
                if sensor.timeout is not None
                else defaults.SENSOR_TIMEOUT
            ),
            exponential=sensor.exponential_backoff,
            soft_fail=sensor.soft_fail,
            logical_date_offset=(
                parse_duration(sensor.logical_date_offset)
                if sensor.logical_date_offset is not None
                else timedelta(0)
            ),
        )

    @property
    def poker(self) -> Poker:
        return KINDS[self.kind].poker

    def wait_after(self, not_met: int) -> timedelta:
        """The wait after the ``not_met``-th poke that found the condition not met."""
        if not self.exponential:
            return self.interval
        doubled = self.interval * (1 << min(max(not_met - 1, 0), MAX_BACKOFF_DOUBLINGS))
        return min(doubled, MAX_DURATION)  # so that ``now + wait`` stays a date


# -- how the engine pokes -------------------------------------------------------------------
def engine_check(
    sensor: Sensor,
    policy: SensorPolicy,
    ctx: RunContext,
    *,
    timezone: str,
    render: Callable[[str], str],
    external: ExternalLookup | None,
    now: datetime,
) -> tuple[bool | None, datetime | None]:
    """A time, datetime or externalTask sensor: met (True), failed (False) or not yet
    (None), and when it can next be met if that is known. Raises ValueError on a target
    that does not parse, and ExpressionError on one that does not render."""
    if sensor.kind is SensorKind.TIME:
        target_time = time.fromisoformat(render(sensor.target_time or ""))
        # The time of day is in the pipeline's timezone, as Airflow's TimeSensor reads it
        # in the DAG's timezone, on the day the data interval ends.
        tz = zone(timezone)
        day = ctx.interval.end.astimezone(tz)
        target = datetime.combine(day.date(), target_time, tzinfo=tz)
        return (True, None) if now >= target else (None, target)
    if sensor.kind is SensorKind.DATETIME:
        target = read_date(render(sensor.target_time or ""), ctx.interval.end.tzinfo or UTC)
        return (True, None) if now >= target else (None, target)
    if external is None:
        raise ValueError("externalTask sensors need a driver that can look up other runs")
    state = external.state(
        sensor.pipeline or "", sensor.task, ctx.logical_date - policy.logical_date_offset
    )
    if state is not None and state in (sensor.states or ["success"]):
        return True, None
    if state is not None and state in (sensor.failed_states or ["failed"]):
        return False, None
    return None, None


# -- how a pod pokes ----------------------------------------------------------------------
FILE_PROBE = f'IFS=; for f in $1; do [ -e "$f" ] && exit 0; done; exit {SENSOR_NOT_MET}'
"""``$1`` is a glob (``*``, ``?``, ``[...]`` within one directory level). With IFS empty
the unquoted pattern is expanded as a glob but never split or run: a path with spaces or
``$(...)`` is a path, as it is for the local runner's ``glob.glob``."""

HTTP_PROBE = f"""url=$1 method=$2 expected=$3 needle=$4 limit=$5
body=/tmp/kascade-sensor-body
t=; command -v timeout >/dev/null 2>&1 && t="timeout $limit"
if command -v curl >/dev/null 2>&1; then
  code=$($t curl -s -L -o "$body" -w '%{{http_code}}' -X "$method" -- "$url") || code=
elif command -v wget >/dev/null 2>&1; then
  if [ "$method" = GET ]; then set --
  elif wget --help 2>&1 | grep -q -- --method; then set -- "--method=$method"
  elif [ "$method" = POST ]; then set -- --post-data ''
  else echo "kascade: an http sensor with method $method needs curl or GNU wget" >&2; exit 2
  fi
  code=$($t wget -S -O "$body" "$@" -- "$url" 2>&1 |
    sed -n 's/^ *HTTP\\/[0-9.]* \\([0-9][0-9][0-9]\\).*/\\1/p' | tail -n 1)
else
  echo "kascade: an http sensor needs curl or wget in the task's image" >&2; exit 2
fi
[ "$code" = "$expected" ] || exit {SENSOR_NOT_MET}
[ -z "$needle" ] || grep -qF -- "$needle" "$body" 2>/dev/null || exit {SENSOR_NOT_MET}
exit 0"""
"""Met when the answer's status is ``expectedStatus`` (after redirects) and its body
holds ``responseContains``; a connection error is "not yet". Uses curl, else wget (GET
and POST with busybox's, any method with GNU wget)."""


def poke_loop(policy: SensorPolicy) -> str:
    """``mode: poke``: run the probe ("$@") until it is met or fails, waiting between
    pokes as :meth:`SensorPolicy.wait_after` does (whole seconds, at least 1)."""
    wait = max(1, math.ceil(policy.interval.total_seconds()))
    doublings = MAX_BACKOFF_DOUBLINGS if policy.exponential else 0
    return (
        f"w={wait}; n=0; "
        f'while :; do "$@"; rc=$?; [ "$rc" = {SENSOR_NOT_MET} ] || exit $rc; '
        f"sleep $w; if [ $n -lt {doublings} ]; then n=$((n+1)); w=$((w*2)); fi; done"
    )


SQL_STATEMENT_TIMEOUT = timedelta(seconds=60)
"""A sql poke's query is cancelled after this long at most (or the sensor's timeout)."""


def s3_target(sensor: Sensor) -> tuple[str, str]:
    """(``--key``/``--prefix``/``--wildcard``, its value) of an s3 sensor."""
    for option, value in (("key", sensor.key), ("prefix", sensor.prefix)):
        if value:
            return option, value
    return "wildcard", sensor.wildcard or ""


def probe_command(sensor: Sensor) -> list[str] | None:
    """The built-in probe for a ``file``, ``http``, ``sql`` or ``s3`` sensor (fields already
    rendered), as argv; None for kinds whose poke is the task's own command."""
    if sensor.kind is SensorKind.SQL:
        argv = ["kascade", "poke", "sql", "--settings-prefix"]
        argv += [connection_prefix(sensor.connection or ""), "--query", sensor.sql or ""]
        argv += ["--timeout", str(math.ceil(SQL_STATEMENT_TIMEOUT.total_seconds()))]
        for value in sensor.parameters or []:
            argv += ["--parameter", value]
        return argv
    if sensor.kind is SensorKind.S3:
        option, value = s3_target(sensor)
        argv = ["kascade", "poke", "s3", "--settings-prefix"]
        argv += [connection_prefix(sensor.connection or ""), f"--{option}", value]
        return argv + (["--bucket", sensor.bucket] if sensor.bucket else [])
    if sensor.kind is SensorKind.FILE:
        return ["sh", "-c", FILE_PROBE, "kascade-sensor", sensor.path or ""]
    if sensor.kind is SensorKind.HTTP:
        return [
            "sh",
            "-c",
            HTTP_PROBE,
            "kascade-sensor",
            sensor.url or "",
            sensor.method.upper(),
            str(sensor.expected_status),
            sensor.response_contains or "",
            str(math.ceil(HTTP_TIMEOUT.total_seconds())),
        ]
    return None


def pod_command(
    sensor: Sensor, policy: SensorPolicy, command: list[str] | None, args: list[str] | None
) -> tuple[list[str] | None, list[str] | None]:
    """What a sensor's pod runs: the probe (or the task's command), looped in poke mode."""
    probe = probe_command(sensor)
    if probe is not None:
        command, args = probe, None
    if policy.mode is SensorMode.POKE and command is not None:
        return ["sh", "-c", poke_loop(policy), "kascade-sensor", *command, *(args or [])], None
    return command, args
