"""What a run is (its dates, params and identity) and what it may ask about other runs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from kascade.engine.outputs import OutputRef
from kascade.engine.schedule import DataInterval


@dataclass(frozen=True)
class RunContext:
    """What a run is: its interval, params and identity (the macros' inputs)."""

    run_id: str
    logical_date: datetime
    interval: DataInterval
    params: Mapping[str, Any]
    pipeline: str
    namespace: str = "default"


class ExternalLookup(Protocol):
    """Answers an externalTask sensor: the state of another pipeline's run or task."""

    def state(self, pipeline: str, task: str | None, logical_date: datetime) -> str | None: ...


class ValueStore(Protocol):
    """Reads an output kept in the object store (``engine/outputs.OutputRef``), when a
    template, a ``when`` or an ``expand`` reaches it. Raises an exception whose message
    says why it cannot be read."""

    def fetch(self, ref: OutputRef) -> Any: ...
