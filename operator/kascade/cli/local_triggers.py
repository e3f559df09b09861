"""``kascade run``'s setup of a local run, and of the runs its trigger tasks start.

A ``triggerPipeline`` task run locally starts the other pipeline in the same process
(``local/triggering.py``). Which pipeline that is, is decided here: the first of

1. a Pipeline of the same file (a multi-document YAML) or another DAG of the same
   Python file, with that name (a DAG matches by ``dag_id`` or its Pipeline name);
2. a Pipeline of another ``*.yaml``/``*.yml`` file of the same folder, or a DAG of a
   ``*.py`` file of that folder (as Airflow's DagBag finds DAGs: files that mention
   both "dag" and "kascade" are loaded), in file-name order.

A triggered run is set up exactly like ``kascade run FILE`` sets up its own: the
pools, variables, connections and SMTP Secret of its own file, its params checked
against its declaration, its dates by the manual-run rule, its record in the local
history. Namespaces do not exist locally: a trigger's ``namespace`` is not used.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kascade.api.resources import Pipeline
from kascade.cli.documents import InputError, plan_of, read_documents
from kascade.cli.local_objects import LocalObjects, pool_problems, read_objects, run_environment
from kascade.engine.actions import TriggerRequest, default_run_id
from kascade.engine.context import RunContext
from kascade.engine.params import resolve_params
from kascade.engine.plan import Plan
from kascade.engine.run_dates import manual_run
from kascade.engine.schedule import parse_schedule
from kascade.integrations.outputs_store import from_environment
from kascade.local.cache import LocalCache, cache_folder
from kascade.local.events import OnEvent
from kascade.local.history import LocalHistory
from kascade.local.mailing import LocalSmtp
from kascade.local.runner import LocalRunner
from kascade.local.triggering import LocalTriggers, Prepared

_SAFE_MODE_WORDS = (b"dag", b"kascade")


def local_smtp(plan: Plan, found: LocalObjects, environ: Mapping[str, str]) -> LocalSmtp:
    """The run's SMTP settings: its Secret from the file, else ``KASCADE_SMTP_*``."""
    return LocalSmtp.find(plan.smtp_secret, found.secrets, environ)


@dataclass
class Source:
    """A pipeline found for a trigger, with the documents of its file."""

    pipeline: Pipeline
    plan: Plan
    docs: list[dict[str, Any]]
    file: Path


@dataclass
class PipelineFinder:
    """Finds pipelines by name in a run's file, then in the other files of its folder."""

    file: Path
    docs: list[dict[str, Any]]
    found: dict[str, Source] = field(default_factory=dict)

    def find(self, name: str) -> Source:
        if name not in self.found:
            self.found[name] = self._search(name)
        return self.found[name]

    def _search(self, name: str) -> Source:
        here = self._in_file(self.file, name, self.docs)
        if here is not None:
            return here
        for path in sorted(self.file.parent.iterdir()):
            if path == self.file or not path.is_file():
                continue
            try:
                source = self._in_file(path, name, None)
            except InputError:
                continue  # a file that does not load is not where the pipeline is
            if source is not None:
                return source
        raise ValueError(
            f"pipeline {name!r} is neither in {self.file.name} nor in another file of "
            f"{self.file.parent}"
        )

    def _in_file(self, path: Path, name: str, docs: list[dict[str, Any]] | None) -> Source | None:
        if path.suffix == ".py":
            return self._in_python(path, name)
        if path.suffix not in (".yaml", ".yml"):
            return None
        docs = docs if docs is not None else read_documents(path, every_kind=True)
        named = [d for d in docs if (d.get("metadata") or {}).get("name") == name]
        if not any(d.get("kind", "Pipeline") == "Pipeline" for d in named):
            return None
        try:
            pipeline, plan = plan_of(docs, name)
        except InputError as exc:
            raise ValueError(f"{path.name}: pipeline {name}: " + "; ".join(exc.lines)) from None
        return Source(pipeline, plan, docs, path)

    def _in_python(self, path: Path, name: str) -> Source | None:
        from kascade.sdk.compiler.local_run import PythonDagError, load_python_plan

        if path != self.file and not all(w in path.read_bytes().lower() for w in _SAFE_MODE_WORDS):
            return None
        try:
            pipeline, plan = load_python_plan(path, name)
        except PythonDagError as exc:
            if path == self.file and not any("no DAG" in line for line in exc.lines):
                raise ValueError(f"{path}: " + "; ".join(exc.lines)) from None
            return None
        return Source(pipeline, plan, [], path)


@dataclass
class LocalSetup:
    """What every run of one ``kascade run`` shares: the clock, the history, the finder."""

    finder: PipelineFinder
    history: LocalHistory
    cwd: str | None = None
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    def triggers(self) -> LocalTriggers:
        """The hub of one ``kascade run`` (its notices go to the run that owns it)."""
        return LocalTriggers(self.prepare, self._exists)

    def _exists(self, pipeline: str, run_id: str) -> bool:
        return (self.history.root / pipeline / f"{run_id}.json").exists()

    def prepare(self, request: TriggerRequest, hub: LocalTriggers, on_event: OnEvent) -> Prepared:
        """A triggered run, ready to start; ValueError says why it cannot be made."""
        source = self.finder.find(request.pipeline)
        spec = source.pipeline.spec
        dates = manual_run(
            parse_schedule(spec.schedule, spec.timezone),
            logical_date=request.logical_date,
            now=self.clock(),
        )
        params, issues = resolve_params(spec.params, request.params)
        found = read_objects(source.docs)
        problems = [str(i) for i in issues] + found.problems
        problems += pool_problems(source.plan, found.pools)
        if problems:
            raise ValueError(f"cannot run {source.pipeline.name}: " + "; ".join(problems))
        env, _ = run_environment(spec, found)
        outputs = from_environment(self.environ)  # SettingsError is a ValueError: refused
        ctx = RunContext(
            run_id=request.run_id or default_run_id(dates.logical_date),
            logical_date=dates.logical_date,
            interval=dates.interval,
            params=params,
            pipeline=source.pipeline.name,
            namespace=source.pipeline.metadata.namespace or "default",
        )
        workdir = self.history.run_dir(ctx.pipeline, ctx.run_id)
        workdir.mkdir(parents=True, exist_ok=True)
        runner = LocalRunner(
            source.plan,
            ctx,
            pools=found.pools,
            env=env,
            workdir=workdir,
            on_event=on_event,
            external=self.history,
            cwd=self.cwd,
            smtp=local_smtp(source.plan, found, self.environ),
            triggers=hub,
            owns_triggers=False,
            cache=LocalCache(cache_folder(self.history.root, ctx.pipeline)),
            outputs=outputs,
        )
        return Prepared(ctx.pipeline, ctx, runner, self.history.save)
