"""Compile DAG files and folders: discovery, loading, compiling, validating, one report.

Every problem names a file and a line: import errors (Airflow's DagBag import
errors), SDK errors raised while the file runs (``UnsupportedFeature``), and
each engine validation error mapped back to the task (and the line that built
it) whose manifest entry it is about.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kascade.api.pipeline import Template
from kascade.engine.validation import validate_document
from kascade.sdk.baseoperator import BaseOperator
from kascade.sdk.compiler import bundle as bundles
from kascade.sdk.compiler import targets
from kascade.sdk.compiler.pipeline import Located, compile_dag
from kascade.sdk.dag import DAG
from kascade.sdk.exceptions import DagDefinitionError
from kascade.sdk.execution.loader import DAGS_FOLDER_ENV, load_file
from kascade.sdk.lowering import Target
from kascade.sdk.naming import pipeline_name

_SAFE_MODE_WORDS = (b"dag", b"kascade")
_INDEX = re.compile(r"^(\w+)\[(\d+)\]$")


@dataclass(frozen=True)
class Problem:
    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        return (
            f"{self.file}:{self.line}: {self.message}"
            if self.line
            else f"{self.file}: {self.message}"
        )


@dataclass
class CompiledDag:
    dag: DAG
    file: Path
    pipeline: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.pipeline["metadata"]["name"])


@dataclass
class Compilation:
    dags: list[CompiledDag] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    bundle: bundles.Bundle | None = None
    seconds: float = 0.0
    task_templates: dict[str, Template] = field(default_factory=dict)
    """TaskTemplate manifests found in the DAG folders (``*.yaml``): DAGs that use one
    (``TaskTemplateOperator``) are checked and run locally with them."""


@dataclass(frozen=True)
class Options:
    target: str = "bundle"
    """local | bundle | image."""
    image: str | None = None
    dags_folder: str | None = None
    skip: Path | None = None
    """A folder inside the DAG folder to leave out of the bundle (the output folder)."""
    validate: bool = True


def discover(path: Path) -> tuple[Path, list[Path]]:
    """The DAG folder and its DAG files (Airflow's safe mode: files that mention 'dag').

    For one file, the DAG folder is ``$KASCADE_DAGS_FOLDER`` (Airflow's ``dags_folder``)
    when the file is inside it, else the file's own folder.
    """
    if path.is_file() or path.suffix == ".py":
        configured = os.environ.get(DAGS_FOLDER_ENV)
        if configured and path.resolve().is_relative_to(Path(configured).resolve()):
            return Path(configured), [path]
        return path.parent, [path]
    found = []
    ignored = bundles.ignore_patterns(path)
    for file in sorted(path.rglob("*.py")):
        rel = file.relative_to(path).parts
        if any(p.startswith(".") or p == "__pycache__" for p in rel):
            continue
        if any(p.search(file.relative_to(path).as_posix()) for p in ignored):
            continue
        try:
            head = file.read_bytes().lower()
        except OSError:
            continue
        if all(word in head for word in _SAFE_MODE_WORDS):
            found.append(file)
    return path, found


def _task_templates(folder: Path) -> tuple[dict[str, Template], list[Problem]]:
    """The TaskTemplate documents of the YAML files in a DAG folder (loaded within the
    bounds of ``engine/loading.py``, as every manifest is)."""
    import yaml

    from kascade.engine import task_templates
    from kascade.engine.loading import load_documents

    docs: list[dict[str, Any]] = []
    problems: list[Problem] = []
    for file in sorted([*folder.rglob("*.yaml"), *folder.rglob("*.yml")]):
        try:
            text = file.read_text(encoding="utf-8")
            if "TaskTemplate" not in text:
                continue
            docs += load_documents(text, every_kind=True)
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            problems.append(Problem(str(file), None, f"cannot read: {exc}"))
    found, bad = task_templates.from_manifests(docs)
    return found, problems + [Problem(str(folder), None, line) for line in bad]


def _location(op: BaseOperator | None, dag: DAG) -> tuple[str, int | None]:
    where = getattr(op, "_location", None) or getattr(dag, "_location", None)
    return (where[0], where[1]) if where else (dag.fileloc or "?", None)


def _has_python_hooks(value: Any) -> bool:
    if isinstance(value, dict):
        if value.get("name") == "KASCADE_BUNDLE":
            return True
        return any(_has_python_hooks(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_python_hooks(v) for v in value)
    return False


def _owner(doc: dict[str, Any], path: str, entries: dict[int, BaseOperator]) -> BaseOperator | None:
    """The task whose manifest entry the issue's field path points into."""
    node: Any = doc
    owner = None
    for token in path.split("."):
        match = _INDEX.match(token)
        key, index = (match.group(1), int(match.group(2))) if match else (token, None)
        if not isinstance(node, dict) or key not in node:
            break
        node = node[key]
        if index is not None:
            if not isinstance(node, list) or index >= len(node):
                break
            node = node[index]
        owner = entries.get(id(node), owner)
    return owner


def _target(
    opts: Options, file: Path, folder: Path, bundle: bundles.Bundle | None, names: dict[str, str]
) -> Target:
    if opts.target == "local":
        return targets.local(file, folder, names)
    if opts.target == "image":
        assert opts.image and opts.dags_folder
        return targets.in_image(file, folder, opts.image, opts.dags_folder, names)
    assert bundle is not None
    return targets.bundled(file, folder, bundle, opts.image, names)


def compile_paths(paths: list[Path], opts: Options | None = None) -> Compilation:
    opts = opts or Options()
    out = Compilation()
    start = time.perf_counter()
    loaded: list[tuple[Path, Path, list[DAG]]] = []
    for path in paths:
        folder, files = discover(path)
        if not files:
            out.problems.append(Problem(str(path), None, "no DAG files found"))
        for file in files:
            result = load_file(file, root=folder)
            out.files.append(file)
            out.problems.extend(Problem(p.file, p.line, p.message) for p in result.problems)
            loaded.append((folder, file, result.dags))
    for folder in dict.fromkeys(folder for folder, _, _ in loaded):
        found, problems = _task_templates(folder)
        out.task_templates.update(found)
        out.problems.extend(problems)
    names: dict[str, str] = {}
    claimed: dict[str, str] = {}
    for _, file, dags in loaded:
        for dag in dags:
            name = pipeline_name(dag.dag_id)
            if name in claimed and claimed[name] != dag.dag_id:
                out.problems.append(
                    Problem(
                        str(file),
                        dag._location[1],
                        f"DAG ids {claimed[name]!r} and {dag.dag_id!r} both map to the "
                        f"Pipeline name {name!r}; rename one",
                    )
                )
            claimed[name] = dag.dag_id
            names[dag.dag_id] = name
    if opts.target == "bundle" and loaded:
        folders = {folder.resolve() for folder, _, _ in loaded}
        if len(folders) > 1:
            shown = ", ".join(sorted(str(f) for f in folders))
            out.problems.append(Problem(shown, None, "compile one DAG folder at a time"))
        else:
            try:
                out.bundle = bundles.build(loaded[0][0], opts.skip)
            except bundles.BundleError as exc:
                out.problems.append(Problem(str(loaded[0][0]), None, str(exc)))
    if opts.target == "bundle" and out.bundle is None:
        out.seconds = time.perf_counter() - start
        return out
    for folder, file, dags in loaded:
        target = _target(opts, file, folder, out.bundle, names)
        source = file.resolve().relative_to(folder.resolve()).as_posix()
        for dag in dags:
            compiled = _compile_one(dag, file, source, target, opts, out)
            if compiled is not None:
                out.dags.append(compiled)
    out.seconds = time.perf_counter() - start
    return out


def _compile_one(
    dag: DAG, file: Path, source: str, target: Target, opts: Options, out: Compilation
) -> CompiledDag | None:
    try:
        doc, entries = compile_dag(dag, target, source)
    except Located as exc:
        where = _location(exc.op, dag)
        task = f"task {exc.op.task_id!r}: " if exc.op is not None else ""
        out.problems.append(Problem(where[0], where[1], f"DAG {dag.dag_id!r}: {task}{exc}"))
        return None
    except (DagDefinitionError, ValueError, TypeError) as exc:
        where = _location(None, dag)
        out.problems.append(Problem(where[0], where[1], f"DAG {dag.dag_id!r}: {exc}"))
        return None
    if out.bundle is not None and _has_python_hooks(doc):
        size = len(out.bundle.text)
        if size > bundles.MAX_HOOK_BUNDLE_BYTES:
            where = _location(None, dag)
            message = (
                f"DAG {dag.dag_id!r}: its callbacks run in hook pods, which get the DAG "
                f"folder as an environment variable, and the bundle is {size} bytes (the "
                f"limit is {bundles.MAX_HOOK_BUNDLE_BYTES}); make the folder smaller with "
                f"{bundles.IGNORE_FILE}, or use an image with the DAGs (--image, --dags-folder)"
            )
            out.problems.append(Problem(where[0], where[1], message))
            return None
    if opts.validate:
        _, _, issues = validate_document(doc, out.task_templates)
        for issue in issues:
            op = _owner(doc, issue.path, entries)
            where = _location(op, dag)
            task = f"task {op.task_id!r}: " if op is not None else ""
            out.problems.append(
                Problem(
                    where[0], where[1], f"DAG {dag.dag_id!r}: {task}{issue.path}: {issue.message}"
                )
            )
        if issues:
            return None
    return CompiledDag(dag, file, doc)
