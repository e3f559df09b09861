"""Parse a task's outputs file (the XCom protocol of ``kascade.api.protocol``), and the rules
for outputs larger than a termination message (kept in an object store).

The same parser reads the local runner's file and the pod's termination message,
so a task behaves the same in both places, limit included. With an object store
configured, outputs may be larger (up to a cap): :func:`split_outputs` decides which
values go to the store (the largest first, until what stays fits in 4 KiB), each under
the key :func:`object_key` names, and a reference (:class:`OutputRef`, the
``kascade.io/ref`` wire form) takes the value's place in status. Both drivers call
these rules; the I/O is theirs.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kascade.api.protocol import (
    BRANCH_OUTPUT,
    CONDITION_OUTPUT,
    OUTPUTS_ENV,
    OUTPUTS_LIMIT_BYTES,
)
from kascade.engine import strict_json

REF_KEY = "kascade.io/ref"
"""An output value ``{"kascade.io/ref": {"key": ..., "size": ..., "sha256": ...}}`` is kept
in the object store; a task may not write one itself."""
_INLINE = frozenset({BRANCH_OUTPUT, CONDITION_OUTPUT})
"""Read by the engine itself: never moved to the store."""


class OutputsError(ValueError):
    pass


def parse_outputs(raw: bytes | str, *, limit: int = OUTPUTS_LIMIT_BYTES) -> dict[str, Any]:
    """A task's outputs: one JSON object or ``key=value`` lines, at most ``limit`` bytes
    (4 KiB, a termination message's size, unless an object store takes the rest)."""
    data = raw.encode() if isinstance(raw, str) else raw
    if len(data) > limit:
        raise OutputsError(too_large(len(data), limit))
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
        out = {str(k): v for k, v in value.items()}
    else:
        out = {}
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
    for name, value in out.items():
        if _holds_ref(value):
            raise OutputsError(f"output {name!r}: {REF_KEY} is reserved for Kascade's references")
    return out


def too_large(size: int, limit: int = OUTPUTS_LIMIT_BYTES) -> str:
    """Why outputs of ``size`` bytes are refused, and what to do instead."""
    if limit == OUTPUTS_LIMIT_BYTES:
        return (
            f"outputs are {size} bytes, over the {OUTPUTS_LIMIT_BYTES}-byte limit "
            f"(a Kubernetes termination message); configure an object store for larger "
            f"outputs (docs/object-store.md), or write large data to storage and pass its "
            f"location in ${OUTPUTS_ENV} instead"
        )
    return (
        f"outputs are {size} bytes, over the {limit}-byte cap of the object store "
        f"for outputs; write large data to storage and pass its location instead"
    )


def _typed(value: str) -> Any:
    """A value that reads as JSON is typed (``rows=42`` gives 42); anything else, including
    ``NaN`` or a number too large to keep, stays the text it is."""
    try:
        return strict_json.loads(value)
    except ValueError:
        return value


def _holds_ref(value: Any) -> bool:
    if isinstance(value, dict):
        return REF_KEY in value or any(_holds_ref(v) for v in value.values())
    if isinstance(value, list):
        return any(_holds_ref(v) for v in value)
    return False


# -- large outputs ------------------------------------------------------------------------
@dataclass(frozen=True)
class OutputRef:
    """An output value kept in the object store: its key (under the store's prefix), its size
    and its SHA-256, checked when it is read back."""

    key: str
    size: int
    sha256: str

    def wire(self) -> dict[str, Any]:
        return {REF_KEY: {"key": self.key, "size": self.size, "sha256": self.sha256}}

    @classmethod
    def of(cls, value: Any) -> OutputRef | None:
        """The reference an output value is, or None for an ordinary value."""
        if not isinstance(value, dict) or set(value) != {REF_KEY}:
            return None
        ref = value[REF_KEY]
        if not isinstance(ref, dict):
            return None
        key, size, digest = ref.get("key"), ref.get("size"), ref.get("sha256")
        if isinstance(key, str) and isinstance(size, int) and isinstance(digest, str):
            return cls(key, size, digest)
        return None


def encoded(value: Any) -> bytes:
    """An output value as the store keeps it: compact JSON."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def split_outputs(
    outputs: Mapping[str, Any], limit: int = OUTPUTS_LIMIT_BYTES
) -> tuple[dict[str, Any], dict[str, bytes]]:
    """(what stays in status, what goes to the store as JSON bytes): the largest values move
    first until the rest is at most ``limit`` bytes of JSON; ``branch`` and ``condition``
    always stay (the engine reads them)."""
    inline = dict(outputs)
    moved: dict[str, bytes] = {}
    sizes = {name: len(encoded(v)) for name, v in inline.items()}
    for name in sorted(sizes, key=lambda n: (-sizes[n], n)):
        if len(encoded(inline)) <= limit:
            break
        if name in _INLINE:
            continue
        moved[name] = encoded(inline.pop(name))
    return inline, moved


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def object_key(
    namespace: str, pipeline: str, run_id: str, instance: str, attempt: int, name: str
) -> str:
    """Where an output value of one attempt is kept: under its run, under its pipeline
    (``<namespace>/<pipeline>/<run>/<task>/<attempt>/<output>.json``)."""
    parts = (namespace, pipeline, run_id, instance, str(attempt), name)
    return "/".join(_safe(part) for part in parts) + ".json"


def pipeline_prefix(namespace: str, pipeline: str) -> str:
    """Every output of a pipeline's runs is kept under this; a run reads nothing else."""
    return f"{_safe(namespace)}/{_safe(pipeline)}/"


def _safe(part: str) -> str:
    return _UNSAFE.sub("_", part) or "_"


def reference(key: str, data: bytes) -> OutputRef:
    return OutputRef(key, len(data), hashlib.sha256(data).hexdigest())


def stored(value: bytes, ref: OutputRef) -> Any:
    """A value read back from the store, checked against its reference."""
    if len(value) != ref.size or hashlib.sha256(value).hexdigest() != ref.sha256:
        raise OutputsError(f"{ref.key}: the object changed since it was written")
    return json.loads(value)
