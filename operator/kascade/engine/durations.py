"""Human-friendly durations in the Go/Argo style ("90s", "1h30m", "2d").

Pipeline specs are YAML written by people, so timeouts, retry delays and
fixed schedules are accepted as short strings rather than ISO 8601. Decimal
arithmetic is used so that "1.1s" is exactly 1.1 seconds and not a float
approximation.
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal, InvalidOperation

from kascade.engine.errors import shown

__all__ = ["MAX_DURATION", "format_duration", "parse_duration"]

MAX_DURATION = timedelta(days=36_500)
"""The longest duration accepted anywhere (100 years): a longer timeout, SLA, retry delay,
offset or schedule interval is a typo, and date arithmetic with it would leave the
calendar (``datetime`` ends at year 9999) or overflow."""
MAX_DURATION_TEXT = "36500d (100 years)"

ACCEPTED_FORMS = (
    "a number of seconds (e.g. 90 or 1.5) or a sequence of <number><unit> with units "
    "ms, s, m, h, d, w (e.g. '500ms', '90s', '1h30m', '1.5h', '2d', '1w')"
)

_UNIT_MICROS: dict[str, int] = {
    "us": 1,
    "µs": 1,
    "ms": 1_000,
    "s": 1_000_000,
    "m": 60_000_000,
    "h": 3_600_000_000,
    "d": 86_400_000_000,
    "w": 604_800_000_000,
}

_MAX_MICROS = MAX_DURATION // timedelta(microseconds=1)
_MAX_SECONDS = MAX_DURATION.total_seconds()
_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)"
_PART = re.compile(rf"({_NUMBER})(us|µs|ms|s|m|h|d|w)")
_BARE = re.compile(rf"{_NUMBER}")


def _too_long(text: object) -> ValueError:
    return ValueError(
        f"invalid duration {shown(text, 40)}: longer than the limit of {MAX_DURATION_TEXT}"
    )


def _error(text: object, why: str) -> ValueError:
    return ValueError(f"invalid duration {shown(text, 40)}: {why}; expected {ACCEPTED_FORMS}")


def _from_micros(text: object, micros: Decimal) -> timedelta:
    """Checked against :data:`MAX_DURATION` before a timedelta exists, so no value overflows."""
    whole = int(micros.to_integral_value())
    if whole > _MAX_MICROS:
        raise _too_long(text)
    return timedelta(microseconds=whole)


def parse_duration(text: str | int | float) -> timedelta:
    """Parse a duration; zero is allowed here, callers that need >0 check it."""
    if isinstance(text, bool):
        raise _error(text, "booleans are not durations")
    if isinstance(text, int | float):
        if text > _MAX_SECONDS:  # before str(): a huge int has too many digits to print
            raise _too_long(text)
        try:
            seconds = Decimal(str(text))
        except InvalidOperation:
            raise _error(text, "not a number") from None
        if not seconds.is_finite():
            raise _error(text, "must be finite")
        if seconds < 0:
            raise _error(text, "must not be negative")
        return _from_micros(text, seconds * 1_000_000)
    if not isinstance(text, str):
        raise _error(text, f"unsupported type {type(text).__name__}")
    stripped = text.strip()
    if not stripped:
        raise _error(text, "empty")
    if stripped.startswith("-"):
        raise _error(text, "must not be negative")
    if stripped.startswith("+"):
        stripped = stripped[1:]
    if _BARE.fullmatch(stripped):
        return _from_micros(text, Decimal(stripped) * 1_000_000)
    total = Decimal(0)
    pos = 0
    for match in _PART.finditer(stripped):
        if match.start() != pos:
            break
        total += Decimal(match.group(1)) * _UNIT_MICROS[match.group(2)]
        pos = match.end()
    if pos != len(stripped) or pos == 0:
        raise _error(text, f"cannot parse {stripped[pos:]!r}")
    return _from_micros(text, total)


def format_duration(td: timedelta) -> str:
    """Render compactly so status fields stay short; parse_duration reads it back.

    Sub-second detail only matters for short durations, so fractions of a
    second are kept below 10s and rounded away above it.
    """
    micros = (td.days * 86_400 + td.seconds) * 1_000_000 + td.microseconds
    sign = "-" if micros < 0 else ""
    micros = abs(micros)
    if micros == 0:
        return "0s"
    if micros < 1_000_000:
        if micros % 1_000 == 0:
            return f"{sign}{micros // 1_000}ms"
        return f"{sign}{_trim(Decimal(micros) / 1_000)}ms"
    if micros < 10_000_000:
        return f"{sign}{_trim(Decimal(micros) / 1_000_000)}s"
    seconds = (micros + 500_000) // 1_000_000
    parts: list[str] = []
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return sign + "".join(parts)


def _trim(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text
