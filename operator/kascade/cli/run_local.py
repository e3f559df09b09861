"""``kascade run``: validate, set the run up, drive it locally, report and record it."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from kascade.api.runs import RunPhase
from kascade.cli.documents import InputError, load_run_file
from kascade.cli.local_objects import pool_problems, read_objects, run_environment
from kascade.cli.run_setup import SetupError, params_of, pools_of, run_dates
from kascade.engine.caching import Refresh
from kascade.engine.context import RunContext
from kascade.engine.run_dates import run_id
from kascade.integrations.outputs_store import OutputsStore, from_environment
from kascade.integrations.settings import SettingsError
from kascade.local.cache import LocalCache
from kascade.local.events import OnEvent, ignore
from kascade.local.history import LocalHistory
from kascade.local.progress import PlainProgress, headline, print_summary
from kascade.local.runner import LocalRunner

EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_INTERRUPTED = 0, 1, 2, 130


@dataclass(frozen=True)
class RunOptions:
    file: Path
    params: tuple[str, ...] = ()
    logical_date: str | None = None
    pools: tuple[str, ...] = ()
    output: str = "text"
    workdir: Path | None = None
    pipeline_name: str | None = None
    quiet: bool = False
    no_cache: bool = False


def run_local(opts: RunOptions) -> int:
    try:
        docs, pipeline, plan = load_run_file(opts.file, opts.pipeline_name)
        spec = pipeline.spec
        dates = run_dates(spec, opts.logical_date, datetime.now(UTC))
        params = params_of(spec, opts.params)
        found = read_objects(docs)
        pools = {**found.pools, **pools_of(opts.pools)}
        problems = found.problems + pool_problems(plan, pools)
        if problems:
            raise SetupError(problems)
        env, notes = run_environment(spec, found)
        outputs = _outputs_store()
    except (InputError, SetupError) as exc:
        for line in exc.lines:
            # Problems of a Python DAG file already start with their file:line.
            prefix = "" if line.startswith(str(opts.file.absolute())) else f"{opts.file}: "
            print(prefix + line, file=sys.stderr)
        return EXIT_INVALID
    for note in found.notes + notes:
        print(f"{opts.file}: note: {note}", file=sys.stderr)
    ctx = RunContext(
        run_id=run_id("manual", dates.logical_date),
        logical_date=dates.logical_date,
        interval=dates.interval,
        params=params,
        pipeline=pipeline.name,
        namespace=pipeline.metadata.namespace or "default",
    )
    history = LocalHistory()
    workdir = _workdir(opts.workdir or history.run_dir(ctx.pipeline, ctx.run_id))
    stream = sys.stderr if opts.output == "json" else sys.stdout
    live = None
    on_event: OnEvent = ignore
    if not opts.quiet and stream.isatty():
        from rich.console import Console

        from kascade.local.live import LiveProgress

        live = LiveProgress(Console(file=stream), len(plan.tasks))
        on_event = live
    elif not opts.quiet:
        on_event = PlainProgress(stream)
    runner = LocalRunner(
        plan,
        ctx,
        pools=pools,
        env=env,
        workdir=workdir,
        on_event=on_event,
        external=history,
        cache=LocalCache(history.root / ctx.pipeline),
        refresh=Refresh(everything=opts.no_cache),
        outputs=outputs,
    )
    if live is not None:
        with live:
            phase = runner.execute()
    else:
        phase = runner.execute()
    if runner.interrupted:
        print("interrupted: every task process was stopped", file=sys.stderr)
        return EXIT_INTERRUPTED
    record = runner.record()
    try:
        history.save(record)
    except OSError as exc:
        print(f"note: could not record the run in {history.root}: {exc}", file=sys.stderr)
    if opts.output == "json":
        print(json.dumps(record, indent=2))
    elif opts.quiet:
        print(headline(record))
    else:
        _summary(stream, live is not None, record, runner, workdir)
    return EXIT_OK if phase is RunPhase.SUCCESS else EXIT_FAILED


def _outputs_store() -> OutputsStore | None:
    """The object store for outputs beyond 4 KiB (``KASCADE_STORE_<key>``), if configured."""
    try:
        return from_environment(os.environ)
    except SettingsError as exc:
        raise SetupError([str(exc)]) from None


def _workdir(wanted: Path) -> Path:
    """The run's directory; a temporary one when the wanted one cannot be made (read-only home)."""
    try:
        wanted.mkdir(parents=True, exist_ok=True)
        return wanted
    except OSError as exc:
        import tempfile

        fallback = Path(tempfile.mkdtemp(prefix="kascade-run-"))
        print(f"note: cannot use {wanted} ({exc.strerror}); logs go to {fallback}", file=sys.stderr)
        return fallback


def _summary(
    stream: TextIO, tty: bool, record: dict[str, object], runner: LocalRunner, workdir: Path
) -> None:
    if tty:
        from rich.console import Console

        from kascade.local.live import print_summary_table

        print_summary_table(Console(file=stream), record, runner.tails)
    else:
        print_summary(record, runner.tails, stream)
    stream.write(f"logs: {workdir / 'logs'}\n")
