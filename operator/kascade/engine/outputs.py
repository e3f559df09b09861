"""Parse a task's outputs file (the XCom protocol of ``kascade.api.protocol``).

The same parser reads the local runner's file and the pod's termination message,
so a task behaves the same in both places, limit included.
"""

from __future__ import annotations

from typing import Any

from kascade.api.protocol import OUTPUTS_ENV, OUTPUTS_LIMIT_BYTES
from kascade.engine import strict_json


class OutputsError(ValueError):
    pass


def too_large(size: int) -> str:
    """Why outputs of ``size`` bytes are refused."""
    return (
        f"outputs are {size} bytes, over the {OUTPUTS_LIMIT_BYTES}-byte limit "
        f"(a Kubernetes termination message); write large data to storage and "
        f"pass its location in ${OUTPUTS_ENV} instead"
    )


def parse_outputs(raw: bytes | str) -> dict[str, Any]:
    data = raw.encode() if isinstance(raw, str) else raw
    if len(data) > OUTPUTS_LIMIT_BYTES:
        raise OutputsError(too_large(len(data)))
    text = data.decode("utf-8", errors="replace").strip()
    if not text:
        return {}
    if text.startswith("{"):
        try:
            value = strict_json.loads(text)
        except strict_json.NotJsonError as exc:
            raise OutputsError(f"outputs look like JSON but do not parse: {exc}") from None
        except strict_json.JsonValueError as exc:
            raise OutputsError(f"outputs JSON cannot be used: {exc}") from None
        if not isinstance(value, dict):
            raise OutputsError("outputs JSON must be an object of name → value")
        return {str(k): v for k, v in value.items()}
    out: dict[str, Any] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not key:
            raise OutputsError(
                f"outputs line {number} is not key=value or a JSON object: {line[:80]!r}"
            )
        out[key] = _typed(value.strip())
    return out


def _typed(value: str) -> Any:
    """A value that reads as JSON is typed (``rows=42`` gives 42); anything else, including
    ``NaN`` or a number too large to keep, stays the text it is."""
    try:
        return strict_json.loads(value)
    except ValueError:
        return value
