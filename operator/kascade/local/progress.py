"""Plain-text progress and the end-of-run summary (no rich: it is costly to import).

Used when the output is not a terminal (CI logs, pipes, benchmarks): one line
per state change, written as it happens, and an aligned table at the end.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from kascade.api.runs import TaskState
from kascade.local.events import Event

_QUIET_STATES = frozenset({TaskState.NONE, TaskState.SCHEDULED, TaskState.QUEUED})


def clock(at: datetime) -> str:
    return at.astimezone().strftime("%H:%M:%S")


def describe(event: Event) -> str | None:
    """The line for an event, or None for transitions nobody needs to see."""
    if event.kind != "state":
        prefix = "SLA missed" if event.kind == "sla" else "note"
        who = f" {event.key}:" if event.key and event.kind == "notice" else ""
        return f"{clock(event.at)} {prefix}:{who} {event.message}"
    state = event.state
    if state is None or state in _QUIET_STATES:
        return None
    detail = []
    if event.duration is not None:
        detail.append(f"{event.duration:.1f}s")
    if event.attempt:
        detail.append(f"attempt {event.attempt}")
    line = f"{clock(event.at)} {event.key} {state.value}"
    if detail:
        line += f" ({', '.join(detail)})"
    if event.message:
        line += f": {event.message}"
    return line


class PlainProgress:
    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def __call__(self, event: Event) -> None:
        line = describe(event)
        if line is not None:
            self.stream.write(line + "\n")
            self.stream.flush()


def _fmt_seconds(value: Any) -> str:
    return f"{value:.1f}s" if isinstance(value, int | float) else "-"


def summary_rows(record: Mapping[str, Any]) -> list[tuple[str, str, str, str, str]]:
    rows = []
    for key, info in record["tasks"].items():
        message = info.get("message") or ""
        rows.append(
            (
                key,
                info["state"] + (" (cached)" if info.get("cached") else ""),
                _fmt_seconds(info.get("durationSeconds")),
                str(info.get("attempts", 0)),
                message.replace("\n", " "),
            )
        )
    return rows


def headline(record: Mapping[str, Any]) -> str:
    text = (
        f"run {record['runId']} of {record['pipeline']}: {record['phase']}"
        f" in {_fmt_seconds(record.get('durationSeconds'))}"
    )
    if record.get("message"):
        text += f" ({record['message']})"
    return text


def print_summary(
    record: Mapping[str, Any],
    tails: Mapping[str, tuple[Path, list[str]]],
    stream: TextIO,
) -> None:
    rows = summary_rows(record)
    header = ("TASK", "STATE", "DURATION", "TRIES", "MESSAGE")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    out = []
    for row in [header, *rows]:
        cells = [row[i].ljust(widths[i]) for i in range(4)]
        out.append("  ".join([*cells, row[4]]).rstrip())
    out.extend(_tail_lines(record, tails))
    out.append(headline(record))
    stream.write("\n".join(out) + "\n")
    stream.flush()


def _tail_lines(
    record: Mapping[str, Any], tails: Mapping[str, tuple[Path, list[str]]]
) -> list[str]:
    out = []
    for key, info in record["tasks"].items():
        if info["state"] != "failed" or key not in tails:
            continue
        log, lines = tails[key]
        out.append(f"--- {key}: last lines of {log}")
        out.extend(f"    {line}" for line in lines)
    return out
