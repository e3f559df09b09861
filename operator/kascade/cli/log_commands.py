"""``kascade logs``: a task attempt's log, on a cluster (its pod) or locally (its file).

Reads through ``kascade.ui.logs``, the same path as the web UI's log view.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

import click

from kascade.cli.view_commands import not_found, reader_for


def log_source(kubeconfig: str | None, local: bool) -> tuple[Any, Any]:
    from kascade.ui.logs import FileLogs, PodLogs

    reader = reader_for(kubeconfig, local)
    if reader.local:
        return reader, FileLogs(reader)
    return reader, PodLogs(reader.kube, archive=log_archive())


def log_archive() -> Any:
    """The log archive the ``KASCADE_STORE_<key>`` variables of this shell describe
    (None without them): where logs are read once their pods are gone."""
    import os

    from kascade.integrations import log_archive as archive
    from kascade.integrations.settings import SettingsError

    try:
        return archive.from_environment(os.environ)
    except SettingsError as exc:
        raise click.UsageError(f"log archive: {exc}") from None


class _Out:
    """Whole lines to stdout from several followers at once, each with its prefix."""

    def __init__(self) -> None:
        self.lock = threading.Lock()

    def writer(self, prefix: str) -> Any:
        pending = bytearray()

        def write(chunk: bytes | None) -> None:
            """A chunk of log; None flushes a last line that has no newline."""
            if chunk is not None:
                pending.extend(chunk)
                cut = pending.rfind(b"\n")
                if cut < 0:
                    return
                data = bytes(pending[:cut])
                del pending[: cut + 1]
            elif pending:
                data = bytes(pending)
                pending.clear()
            else:
                return
            text = "".join(f"{prefix}{ln.decode('utf-8', 'replace')}\n" for ln in data.split(b"\n"))
            with self.lock:
                sys.stdout.write(text)
                sys.stdout.flush()

        return write


def _print_task(
    source: Any, ns: str, run: str, key: str, attempt: int | None, follow: bool
) -> None:
    from kascade.ui.logs import follow_task

    out = sys.stdout.buffer
    for chunk in follow_task(source, ns, run, key, attempt=attempt, follow=follow):
        out.write(chunk)
        out.flush()


def _follow_run(reader: Any, source: Any, ns: str, run: str) -> None:
    """Every task's log as it runs, each line prefixed with its task, until the run ends."""
    from kascade.ui import model
    from kascade.ui.logs import follow_task
    from kascade.ui.readers import NotFound

    out = _Out()
    started: dict[str, threading.Thread] = {}
    width = 0

    def stream(key: str) -> None:
        write = out.writer(f"{key.ljust(width)} | ")
        try:
            for chunk in follow_task(source, ns, run, key, attempt=None, follow=True):
                write(chunk)
        except NotFound as exc:
            write(f"({exc})\n".encode())
        write(None)

    while True:
        states = reader.run(ns, run)["tasks"]
        width = max([width, *map(len, states)])
        for key, state in states.items():
            if key not in started and state not in ("none", "scheduled", "queued", "skipped"):
                if state == "upstream_failed":
                    continue
                thread = threading.Thread(target=stream, args=(key,), daemon=True)
                started[key] = thread
                thread.start()
        phase = reader.run(ns, run)["phase"]
        if phase in model.FINISHED and all(not t.is_alive() for t in started.values()):
            return
        time.sleep(1.0)


@click.command("logs")
@click.argument("run")
@click.option("--task", help="The task instance (``load`` or ``load[3]``); default: every task.")
@click.option("--attempt", type=int, help="Which attempt (default: the latest).")
@click.option("-f", "--follow", is_flag=True, help="Stream while it runs (and later attempts).")
@click.option("-n", "--namespace", default="default", show_default=True)
@click.option("--kubeconfig", envvar="KUBECONFIG", default=None)
@click.option("--local", is_flag=True, help="A run of the local history ($KASCADE_HOME).")
def logs_command(
    run: str,
    task: str | None,
    attempt: int | None,
    follow: bool,
    namespace: str,
    kubeconfig: str | None,
    local: bool,
) -> None:
    """Print the log of a run's task attempts (pods on a cluster, files for local runs).

    \b
    kascade logs RUN --task T            the latest attempt of T
    kascade logs RUN --task T -f         follow it, and its retries, until T is done
    kascade logs RUN                     every task's latest attempt, one after the other
    kascade logs RUN -f                  every task as it runs, lines prefixed by task
    """
    from kascade.ui.readers import NotFound

    if attempt is not None and task is None:
        raise click.UsageError("--attempt needs --task")
    reader, source = log_source(kubeconfig, local)
    with not_found():
        if task is not None:
            _print_task(source, namespace, run, task, attempt, follow)
            return
        if follow:
            _follow_run(reader, source, namespace, run)
            return
        tasks = sorted(reader.tasks(namespace, run), key=lambda t: t["startTime"] or "~")
        for t in tasks:
            if not t["tries"]:
                continue
            click.echo(f"==> {t['key']} (attempt {t['tries'][-1]['number']}, {t['state']}) <==")
            try:
                _print_task(source, namespace, run, t["key"], None, False)
            except NotFound as exc:
                click.echo(f"({exc})")


def register(group: click.Group) -> None:
    group.add_command(logs_command)
