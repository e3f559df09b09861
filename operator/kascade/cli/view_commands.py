"""Commands that show runs: ``kascade get`` and ``kascade ui`` (``kascade logs``: log_commands).

Each reads a cluster (the kubeconfig's identity) or, with ``--local`` or when no
cluster is configured, the local runner's history, through the same read model
as the web UI, so the columns are the UI's columns.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import click

SYMBOLS = {"success": "■", "failed": "✗", "running": "▶", "queued": "·"}
COLOURS = {"success": "green", "failed": "red", "running": "cyan", "queued": "white"}

where = [
    click.option("-n", "--namespace", default="default", show_default=True),
    click.option("-A", "--all-namespaces", is_flag=True, help="Every namespace."),
    click.option("--kubeconfig", envvar="KUBECONFIG", default=None),
    click.option(
        "--local",
        is_flag=True,
        help="Read the local runner's history ($KASCADE_HOME), the default with no cluster.",
    ),
]


def _where(f: Any) -> Any:
    for option in reversed(where):
        f = option(f)
    return f


def reader_for(kubeconfig: str | None, local: bool) -> Any:
    from kascade.ui import readers

    if local or (kubeconfig is None and readers.no_cluster_configured()):
        return readers.LocalReader()
    from kascade.cli.cluster_commands import _kube

    return readers.ClusterReader(_kube(kubeconfig))


@contextmanager
def not_found() -> Iterator[None]:
    from kascade.ui.readers import NotFound

    try:
        yield
    except NotFound as exc:
        raise click.ClickException(str(exc.args[0] if exc.args else exc)) from None


# -- get ----------------------------------------------------------------------------------------
def _ago(value: Any, now: datetime) -> str:
    from kascade.ui.model import parse_time

    at = parse_time(value)
    if at is None:
        return "-"
    seconds = (at - now).total_seconds()
    word = "in " if seconds > 0 else ""
    seconds = abs(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            text = f"{int(seconds // size)}{unit}"
            break
    else:
        text = f"{int(seconds)}s"
    return f"{word}{text}" if word else f"{text} ago"


def _duration(value: Any) -> str:
    if not isinstance(value, int | float):
        return "-"
    if value < 60:
        return f"{value:.1f}s"
    minutes, seconds = divmod(int(value), 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    return f"{minutes // 60}h{minutes % 60:02d}m"


def _squares(runs: list[dict[str, Any]], colour: bool) -> str:
    out = []
    for r in reversed(runs):  # oldest first, as the UI draws them left to right
        symbol = SYMBOLS.get(r["phase"], "?")
        out.append(click.style(symbol, fg=COLOURS.get(r["phase"])) if colour else symbol)
    return "".join(out) or "-"


def pipeline_columns(wide: bool) -> list[tuple[str, Any]]:
    cols: list[tuple[str, Any]] = [
        ("NAMESPACE", lambda p, c: p["namespace"] or "-"),
        ("NAME", lambda p, c: p["name"]),
        ("SCHEDULE", lambda p, c: p["schedule"] or "-"),
        ("NEXT RUN", lambda p, c: _ago(p["nextRun"], c["now"])),
        ("PAUSED", lambda p, c: "yes" if p["paused"] else "no"),
        ("LAST RUNS", lambda p, c: _squares(p["lastRuns"], c["colour"])),
        ("TAGS", lambda p, c: ",".join(p["tags"]) or "-"),
    ]
    if wide:
        cols += [
            ("TASKS", lambda p, c: str(p["taskCount"] if p["taskCount"] is not None else "-")),
            ("ACTIVE", lambda p, c: str(p["activeRuns"] or 0)),
            ("VALID", lambda p, c: "yes" if p["valid"] else "no"),
        ]
    return cols


def run_columns(wide: bool) -> list[tuple[str, Any]]:
    cols: list[tuple[str, Any]] = [
        ("NAMESPACE", lambda r, c: r["namespace"] or "-"),
        ("NAME", lambda r, c: r["name"]),
        ("PIPELINE", lambda r, c: r["pipeline"]),
        ("PHASE", lambda r, c: r["phase"]),
        ("LOGICAL DATE", lambda r, c: r["logicalDate"] or "-"),
        ("TRIGGER", lambda r, c: r["trigger"]),
        ("PROGRESS", lambda r, c: r["progress"]),
        ("STARTED", lambda r, c: _ago(r["startTime"], c["now"])),
        ("DURATION", lambda r, c: _duration(r["durationSeconds"])),
    ]
    if wide:
        cols += [
            ("DATA INTERVAL", lambda r, c: _interval(r["dataInterval"])),
            ("BY", lambda r, c: r["triggeredBy"] or "-"),
            ("MESSAGE", lambda r, c: r["message"] or "-"),
        ]
    return cols


def task_columns(wide: bool) -> list[tuple[str, Any]]:
    cols: list[tuple[str, Any]] = [
        ("RUN", lambda t, c: t["run"]),
        ("TASK", lambda t, c: t["key"]),
        ("STATE", lambda t, c: t["state"]),
        ("TRIES", lambda t, c: str(t["attempts"])),
        ("STARTED", lambda t, c: _ago(t["startTime"], c["now"])),
        ("DURATION", lambda t, c: _duration(t["durationSeconds"])),
        ("EXIT", lambda t, c: "-" if t["exitCode"] is None else str(t["exitCode"])),
    ]
    if wide:
        cols += [
            ("POD", lambda t, c: t["pod"] or "-"),
            ("REASON", lambda t, c: (t["tries"][-1].get("reason") if t["tries"] else None) or "-"),
            ("MESSAGE", lambda t, c: t["message"] or "-"),
        ]
    return cols


def _interval(value: Any) -> str:
    if not isinstance(value, dict):
        return "-"
    return f"{value.get('start')} → {value.get('end')}"


def _table(rows: list[dict[str, Any]], columns: list[tuple[str, Any]], ctx: dict[str, Any]) -> str:
    cells = [[str(fn(row, ctx)) for _, fn in columns] for row in rows]
    plain = [[click.unstyle(c) for c in line] for line in cells]
    widths = [len(h) for h, _ in columns]
    for line in plain:
        widths = [max(w, len(c)) for w, c in zip(widths, line, strict=True)]
    out = ["   ".join(h.ljust(w) for (h, _), w in zip(columns, widths, strict=True)).rstrip()]
    for line, bare in zip(cells, plain, strict=True):
        padded = [c + " " * (w - len(b)) for c, b, w in zip(line, bare, widths, strict=True)]
        out.append("   ".join(padded).rstrip())
    return "\n".join(out)


@click.command("get")
@click.argument("kind", type=click.Choice(["pipelines", "runs", "tasks"]))
@click.argument("name", required=False)
@_where
@click.option("--pipeline", help="runs: only this pipeline's.")
@click.option("--run", "run_name", help="tasks: of this run (or give it as NAME).")
@click.option(
    "-o", "--output", type=click.Choice(["table", "wide", "json", "yaml"]), default="table"
)
def get_command(
    kind: str,
    name: str | None,
    namespace: str,
    all_namespaces: bool,
    kubeconfig: str | None,
    local: bool,
    pipeline: str | None,
    run_name: str | None,
    output: str,
) -> None:
    """List pipelines, runs or a run's tasks, with the web UI's columns.

    \b
    kascade get pipelines [-A]
    kascade get runs [--pipeline P]
    kascade get tasks RUN
    """
    from kascade.ui import model

    reader = reader_for(kubeconfig, local)
    ns = None if all_namespaces or reader.local else namespace
    now = datetime.now(UTC)
    with not_found():
        if kind == "pipelines":
            rows = reader.pipelines(ns)
            if name:
                rows = [p for p in rows if p["name"] == name]
            columns = pipeline_columns(output == "wide")
        elif kind == "runs":
            rows = [model.run_row(r, now) for r in reader.runs(ns, pipeline or name)]
            columns = run_columns(output == "wide")
        else:
            run = run_name or name
            if not run:
                raise click.UsageError("kascade get tasks RUN (or --run RUN)")
            rows = [model.task_row(t, now) for t in reader.tasks(namespace, run)]
            columns = task_columns(output == "wide")
    if output == "json":
        click.echo(json.dumps(rows, indent=2, default=str))
    elif output == "yaml":
        import yaml

        click.echo(yaml.safe_dump(rows, sort_keys=False, allow_unicode=True), nl=False)
    elif not rows:
        scope = "local history" if reader.local else f"namespace {ns or 'any'}"
        click.echo(f"No {kind} found in {scope}.", err=True)
    else:
        ctx = {"now": now, "colour": sys.stdout.isatty()}
        click.echo(_table(rows, columns, ctx))


@click.command("ui")
@click.option("--port", default=8080, show_default=True)
@click.option("--address", default="127.0.0.1", show_default=True, help="Where to listen.")
@click.option("--namespace", "namespaces", multiple=True, help="Show this namespace (repeat).")
@click.option("-A", "--all-namespaces", is_flag=True, help="Show every namespace (the default).")
@click.option("--kubeconfig", envvar="KUBECONFIG", default=None)
@click.option("--local", is_flag=True, help="Show the local runner's history, not a cluster.")
@click.option("--read-only", is_flag=True, envvar="KASCADE_UI_READ_ONLY", help="No actions.")
@click.option(
    "--auth",
    type=click.Choice(["auto", "kubeconfig", "token"]),
    default="auto",
    envvar="KASCADE_UI_AUTH",
    show_default=True,
    help="token: each user's bearer token, checked with TokenReview/SubjectAccessReview "
    "(the default in a cluster); kubeconfig: your kubeconfig's identity.",
)
@click.option(
    "--allow-host",
    "allow_hosts",
    multiple=True,
    help="Another Host header to accept in kubeconfig mode (loopback only by default).",
)
def ui_command(
    port: int,
    address: str,
    namespaces: tuple[str, ...],
    all_namespaces: bool,
    kubeconfig: str | None,
    local: bool,
    read_only: bool,
    auth: str,
    allow_hosts: tuple[str, ...],
) -> None:
    """Serve the web UI: pipelines, grid, graph, runs, logs, and actions.

    With a kubeconfig it acts as you (like kubectl proxy); with no cluster
    configured (or --local) it shows the local runner's history.
    """
    from kascade.cli.log_commands import log_archive
    from kascade.ui.serving import Options, serve

    if all_namespaces and namespaces:
        raise click.UsageError("give --namespace or --all-namespaces, not both")
    serve(
        Options(
            address=address,
            port=port,
            namespaces=namespaces,
            kubeconfig=kubeconfig,
            local=local,
            read_only=read_only,
            auth=auth,
            allow_hosts=allow_hosts,
            log_archive=None if local else log_archive(),
        )
    )


def register(group: click.Group) -> None:
    for command in (get_command, ui_command):
        group.add_command(command)
