"""The live terminal display (rich), loaded only when the output is a terminal.

Events only update counters and a dict of running tasks (O(1) each); rendering
happens on rich's refresh thread at most 10 times a second and looks at a
bounded number of rows, so a run of thousands of tasks is not slowed by its
own display.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from kascade.api.runs import TaskState
from kascade.local.events import Event
from kascade.local.progress import describe, headline, summary_rows

_TERMINAL = frozenset(
    {TaskState.SUCCESS, TaskState.FAILED, TaskState.SKIPPED, TaskState.UPSTREAM_FAILED}
)
_STYLES = {
    "success": "green",
    "failed": "red",
    "upstream_failed": "dark_orange",
    "skipped": "magenta",
    "up_for_retry": "yellow",
    "up_for_reschedule": "cyan",
    "running": "bright_green",
}
_SHOWN_RUNNING = 8


class LiveProgress:
    def __init__(self, console: Console, total: int) -> None:
        self.console = console
        self.total = total
        self.states: dict[str, TaskState] = {}
        self.counts: Counter[TaskState] = Counter()
        self.running: dict[str, float] = {}
        self.lock = threading.Lock()
        self.live = Live(
            get_renderable=self._render,
            console=console,
            refresh_per_second=10,
            transient=True,
        )

    def __enter__(self) -> LiveProgress:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.__exit__(None, None, None)

    def __call__(self, event: Event) -> None:
        if event.kind == "state" and event.key is not None and event.state is not None:
            with self.lock:
                self._count(event.key, event.state)
            if event.state in (TaskState.SUCCESS, TaskState.RUNNING, TaskState.SCHEDULED):
                return
            if event.state is TaskState.QUEUED or event.state is TaskState.NONE:
                return
        line = describe(event)
        if line is not None:
            self.console.print(Text(line, style=_STYLES.get(str(event.state), "")))

    def _count(self, key: str, state: TaskState) -> None:
        old = self.states.get(key)
        if old is None:
            self.total = max(self.total, len(self.states) + 1)
        else:
            self.counts[old] -= 1
        self.states[key] = state
        self.counts[state] += 1
        if state is TaskState.RUNNING:
            self.running[key] = time.monotonic()
        else:
            self.running.pop(key, None)

    def _render(self) -> RenderableType:
        with self.lock:
            now = time.monotonic()
            shown = list(itertools.islice(self.running.items(), _SHOWN_RUNNING))
            more = len(self.running) - len(shown)
            done = sum(self.counts[s] for s in _TERMINAL)
            counts = {s.value: n for s, n in self.counts.items() if n}
            total = max(self.total, len(self.states))
        lines: list[RenderableType] = []
        for key, since in shown:
            lines.append(Text.assemble(("  ▶ ", "bright_green"), key, f"  {now - since:.1f}s"))
        if more > 0:
            lines.append(Text(f"  … and {more} more running", style="dim"))
        status = Table.grid(padding=(0, 1))
        status.add_row(
            ProgressBar(total=total or 1, completed=done, width=30),
            Text(f"{done}/{total} done", style="bold"),
            Text.from_markup(
                "  ".join(
                    f"[{_STYLES.get(k, 'white')}]{k}[/] {n}" for k, n in sorted(counts.items())
                )
            ),
        )
        lines.append(status)
        return Group(*lines)


def print_summary_table(
    console: Console,
    record: Mapping[str, Any],
    tails: Mapping[str, tuple[Path, list[str]]],
) -> None:
    table = Table(title=f"{record['pipeline']} {record['runId']}", expand=False)
    for name in ("Task", "State", "Duration", "Tries", "Message"):
        table.add_column(name, overflow="fold")
    for key, state, duration, tries, message in summary_rows(record):
        style = _STYLES.get(state.split(" ")[0], "")
        table.add_row(key, Text(state, style=style), duration, tries, message)
    console.print(table)
    for key, info in record["tasks"].items():
        if info["state"] == "failed" and key in tails:
            log, lines = tails[key]
            console.print(Text(f"--- {key}: last lines of {log}", style="bold red"))
            for line in lines:
                console.print(Text(f"    {line}"))
    style = "bold green" if record["phase"] == "success" else "bold red"
    console.print(Text(headline(record), style=style))
