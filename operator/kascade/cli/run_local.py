"""``kascade run``: validate, set the run up, drive it locally, report and record it."""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from kascade.api.runs import RunPhase
from kascade.cli.documents import InputError, load_run_file
from kascade.cli.local_objects import pool_problems, read_objects, run_environment
from kascade.cli.local_triggers import LocalSetup, PipelineFinder, local_smtp
from kascade.cli.run_setup import SetupError, params_of, pools_of, run_dates
from kascade.engine import strict_json
from kascade.engine.caching import Refresh
from kascade.engine.context import RunContext
from kascade.engine.run_dates import run_id
from kascade.integrations.outputs_store import OutputsStore, from_environment
from kascade.integrations.settings import SettingsError
from kascade.local.cache import LocalCache, cache_folder
from kascade.local.events import Event, OnEvent, ignore
from kascade.local.history import LocalHistory
from kascade.local.progress import PlainProgress, headline, print_summary
from kascade.local.runner import LocalRunner

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2


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
    triggered = datetime.now(UTC)
    try:
        docs, pipeline, plan = load_run_file(opts.file, opts.pipeline_name)
        spec = pipeline.spec
        dates = run_dates(spec, opts.logical_date, triggered)
        params = params_of(spec, opts.params, plan)
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
    history = LocalHistory()
    # Airflow's manual__<trigger time>: every run its own id and folder, whatever its
    # logical date, so two runs of one day neither share outputs nor overwrite logs.
    rid, home = _run_home(history, pipeline.name, run_id("manual", triggered))
    ctx = RunContext(
        run_id=rid,
        logical_date=dates.logical_date,
        interval=dates.interval,
        params=params,
        pipeline=pipeline.name,
        namespace=pipeline.metadata.namespace or "default",
    )
    workdir = _workdir(opts.workdir) if opts.workdir else home
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
    recorder = Recorder(history, home.name, {"pipelineSpec": spec.dump()})
    setup = LocalSetup(PipelineFinder(opts.file.absolute(), docs), history)
    runner = LocalRunner(
        plan,
        ctx,
        pools=pools,
        env=env,
        workdir=workdir,
        on_event=recorder.chain(on_event),
        external=history,
        smtp=local_smtp(plan, found, os.environ),
        triggers=setup.triggers(),
        cache=LocalCache(cache_folder(history.root, ctx.pipeline)),
        refresh=Refresh(everything=opts.no_cache),
        outputs=outputs,
    )
    recorder.runner = runner
    recorder.save()
    if live is not None:
        with live:
            phase = runner.execute()
    else:
        phase = runner.execute()
    record = recorder.save()
    if opts.output == "json":
        print(strict_json.dumps(record, indent=2))
    elif opts.quiet:
        print(headline(record))
    else:
        _summary(stream, live is not None, record, runner, workdir)
    if runner.interrupted is not None:
        print(f"{record['message']}: every task process was stopped", file=sys.stderr)
        return 128 + int(runner.interrupted)  # 130 for SIGINT, 143 for SIGTERM
    return EXIT_OK if phase is RunPhase.SUCCESS else EXIT_FAILED


class Recorder:
    """Keeps the run's history record current: at start, at most once a second, at the end.

    ``kascade get``/``logs`` and the web UI read running local runs from it.
    """

    INTERVAL_SECONDS = 1.0

    def __init__(self, history: LocalHistory, ref: str, extra: dict[str, object]) -> None:
        self.history = history
        self.ref = ref
        self.extra = extra
        self.runner: LocalRunner | None = None
        self._pending: asyncio.TimerHandle | None = None
        self._warned = False

    def chain(self, display: OnEvent) -> OnEvent:
        def on_event(event: Event) -> None:
            display(event)
            self._soon()

        return on_event

    def _soon(self) -> None:
        if self._pending is None:
            loop = asyncio.get_running_loop()
            self._pending = loop.call_later(self.INTERVAL_SECONDS, self._flush)

    def _flush(self) -> None:
        self._pending = None
        self.save()

    def save(self) -> dict[str, object]:
        assert self.runner is not None
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        record = {**self.runner.record(), "ref": self.ref, **self.extra}
        try:
            self.history.save(record)
        except OSError as exc:
            if not self._warned:
                self._warned = True
                print(
                    f"note: could not record the run in {self.history.root}: {exc}", file=sys.stderr
                )
        return record


def _run_home(history: LocalHistory, pipeline: str, run_id: str) -> tuple[str, Path]:
    """The run's id and its own directory (logs, scripts, outputs), never shared with
    another run: the id is the folder's name (``~2`` added when two runs start in the
    same microsecond)."""
    try:
        home = history.new_run_dir(pipeline, run_id)
        return home.name, home
    except OSError as exc:
        import tempfile

        fallback = Path(tempfile.mkdtemp(prefix="kascade-run-"))
        print(
            f"note: cannot use {history.root} ({exc.strerror}); logs go to {fallback}",
            file=sys.stderr,
        )
        return run_id, fallback


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
