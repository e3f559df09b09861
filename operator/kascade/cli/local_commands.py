"""Commands that need no cluster: ``run``, ``validate`` and ``graph``.

Only click is imported at module level; each command imports what it needs
when it runs, so listing commands or asking for help stays instant.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

EXIT_INVALID = 2

_FILE = click.Path(dir_okay=False, path_type=Path)


@click.command("run")
@click.argument("file", type=_FILE)
@click.option(
    "--param", "params", multiple=True, metavar="NAME=VALUE", help="Override a param (repeatable)."
)
@click.option(
    "--logical-date",
    metavar="DATE",
    help="The run's logical date: a date or date-time (UTC unless an offset is given); "
    "default: now. Its data interval is the schedule's latest complete interval ending "
    "at or before it (Airflow's rule for manual runs).",
)
@click.option(
    "--pool", "pools", multiple=True, metavar="NAME=SLOTS", help="Size a pool (repeatable)."
)
@click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where logs and scripts go (default: next to the run's history file).",
)
@click.option(
    "--pipeline",
    "--dag",
    "pipeline_name",
    metavar="NAME",
    help="Which pipeline of FILE to run (for a Python file: a dag_id or its Pipeline name).",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress; only the outcome.")
@click.option(
    "--no-cache",
    is_flag=True,
    help="Run every task with a cache: read no cache entry (new ones are still written).",
)
def run_command(
    file: Path,
    params: tuple[str, ...],
    logical_date: str | None,
    pools: tuple[str, ...],
    output: str,
    workdir: Path | None,
    pipeline_name: str | None,
    quiet: bool,
    no_cache: bool,
) -> None:
    """Run a pipeline once on this machine, each task a local process.

    FILE is a manifest or a Python DAG file (like `airflow dags test`): its
    Python tasks run in this interpreter, in one process each. Tasks with a
    `cache` reuse the outputs earlier local runs left ($KASCADE_HOME/task-cache).
    Outputs beyond 4 KiB go to the object store the KASCADE_STORE_<key>
    variables describe (endpoint, bucket, accessKeyId, ...), when they are set.

    Every run has its own id (manual__<trigger time>) and folder. Ctrl-C or SIGTERM
    stops the run, prints its table and records it; a second Ctrl-C kills at once.

    Exit code: 0 if the run succeeded, 1 if it failed, 2 if the input is invalid,
    130 when interrupted by Ctrl-C, 143 by SIGTERM.
    """
    from kascade.cli.run_local import RunOptions, run_local

    options = RunOptions(
        file=file,
        params=params,
        logical_date=logical_date,
        pools=pools,
        output=output,
        workdir=workdir,
        pipeline_name=pipeline_name,
        quiet=quiet,
        no_cache=no_cache,
    )
    sys.exit(run_local(options))


@click.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
def validate_command(files: tuple[Path, ...]) -> None:
    """Check every Pipeline in FILES; print each problem with its field path.

    FILES are manifests, Python DAG files or folders of Python DAG files: a
    Python problem is printed as file:line (import errors, unsupported
    arguments, and every engine error mapped back to the task that caused it).
    Warnings (a run's data put unquoted into shell or Python source) do not fail.
    Exit code 1 if anything is invalid.
    """
    bad = False
    shared = _task_templates([p for p in files if not (p.is_dir() or p.suffix == ".py")])
    for path in files:
        if path.is_dir() or path.suffix == ".py":
            bad |= _validate_python(path)
        else:
            bad |= _validate_manifest(path, shared)
    sys.exit(1 if bad else 0)


def _task_templates(paths: list[Path]) -> dict[str, Any]:
    """The TaskTemplates of every manifest given: pipelines in any of them may use them."""
    from kascade.cli.documents import InputError, read_documents
    from kascade.engine import task_templates

    docs = []
    for path in paths:
        try:
            docs += read_documents(path, every_kind=True)
        except InputError:
            continue  # said when the file itself is validated
    return task_templates.from_manifests(docs)[0]


def _validate_python(path: Path) -> bool:
    from kascade.cli.documents import check
    from kascade.sdk.compiler.project import Options, compile_paths

    result = compile_paths([path], Options(target="bundle"))
    for problem in result.problems:
        click.echo(str(problem))
    for compiled in result.dags:
        for warning in check(compiled.pipeline).warnings:  # paths of the compiled Pipeline
            click.echo(f"{compiled.file}: {compiled.dag.dag_id}: warning: {warning}")
        tasks = len(compiled.dag.task_dict)
        click.echo(
            f"{compiled.file}: {compiled.dag.dag_id}: OK ({tasks} tasks, pipeline {compiled.name})"
        )
    return bool(result.problems)


def _validate_manifest(path: Path, shared: dict[str, Any]) -> bool:
    from kascade.cli.documents import InputError, check, read_documents
    from kascade.engine import task_templates
    from kascade.engine.validation import is_pipeline

    bad = False
    try:
        every = read_documents(path, every_kind=True)
    except InputError as exc:
        for line in exc.lines:
            click.echo(f"{path}: {line}")
        return True
    docs = [d for d in every if is_pipeline(d)]
    templates = [d for d in every if d.get("kind") == task_templates.KIND]
    for doc in templates:
        name = (doc.get("metadata") or {}).get("name") or "?"
        problems = [str(i) for i in task_templates.validate(doc)]
        bad |= bool(problems)
        for problem in problems or ["OK"]:
            click.echo(f"{path}: TaskTemplate {name}: {problem}")
    if not docs and not templates:
        bad = True
        click.echo(f"{path}: no Pipeline document found")
    for doc in docs:
        checked = check(doc, shared)
        prefix = f"{path}: {checked.name}: " if len(docs) > 1 else f"{path}: "
        if checked.problems or checked.plan is None:
            bad = True
            for problem in checked.problems or ["invalid"]:
                click.echo(prefix + problem)
        else:
            for warning in checked.warnings:
                click.echo(f"{prefix}warning: {warning}")
            click.echo(f"{prefix}OK ({len(checked.plan.tasks)} tasks)")
    return bad


@click.command("graph")
@click.argument("file", type=_FILE)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "mermaid", "dot"]),
    default="text",
    show_default=True,
)
@click.option(
    "--pipeline", "--dag", "pipeline_name", metavar="NAME", help="Which pipeline of FILE."
)
def graph_command(file: Path, fmt: str, pipeline_name: str | None) -> None:
    """Show the compiled DAG: groups expanded, ids qualified, special tasks marked."""
    from kascade.cli.documents import InputError, load_plan
    from kascade.cli.graph import RENDERERS

    try:
        _, plan = load_plan(file, pipeline_name)
    except InputError as exc:
        for line in exc.lines:
            click.echo(f"{file}: {line}", err=True)
        sys.exit(EXIT_INVALID)
    click.echo(RENDERERS[fmt](plan), nl=False)


def register(group: click.Group) -> None:
    for command in (run_command, validate_command, graph_command):
        group.add_command(command)
