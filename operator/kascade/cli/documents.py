"""Reading manifests for the local commands: files → Pipeline documents → plans.

Errors come back as lines ready to print (``path: message``); the commands
decide the exit code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kascade.api.pipeline import Template
from kascade.api.resources import Pipeline
from kascade.engine import injection, task_templates
from kascade.engine.loading import LoadError
from kascade.engine.plan import Plan
from kascade.engine.validation import is_pipeline, load_documents, validate_document


class InputError(Exception):
    """A manifest that cannot be used; ``lines`` are every problem, one per line."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        super().__init__("\n".join(lines))


@dataclass
class Checked:
    name: str
    pipeline: Pipeline | None
    plan: Plan | None
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    """What is valid but risky (a run's data put unquoted into a script: engine/injection)."""


MAX_FILE_BYTES = 64 << 20
"""A manifest file larger than this is refused before it is read (the API server takes
3 MiB per object; a local run of 20,000 tasks is about 3 MiB of YAML)."""


def read_text(path: Path) -> str:
    """A manifest's text: UTF-8 (a BOM is allowed), at most :data:`MAX_FILE_BYTES`."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise InputError([f"cannot read: {exc.strerror or exc}"]) from None
    if len(data) > MAX_FILE_BYTES:
        raise InputError([f"larger than {MAX_FILE_BYTES >> 20} MiB: not a manifest"])
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        byte = data[exc.start : exc.start + 1].hex()
        raise InputError(
            [f"not UTF-8 text: byte 0x{byte} at line {line}, column {column} ({exc.reason})"]
        ) from None


def read_documents(path: Path, *, every_kind: bool = False) -> list[dict[str, Any]]:
    """The Pipelines of a file (every object in it, with ``every_kind``)."""
    text = read_text(path)
    try:
        return load_documents(text, every_kind=every_kind)
    except LoadError as exc:
        raise InputError([str(exc)]) from None
    except yaml.YAMLError as exc:
        raise InputError([_yaml_problem(exc)]) from None


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None)
    if mark is None or problem is None:
        return "not valid YAML: " + " ".join(str(exc).split())
    context = getattr(exc, "context", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}"
    if isinstance(exc, yaml.constructor.ConstructorError):  # valid YAML, a refused value
        return f"{where}: {problem}"
    return f"not valid YAML at {where}: {problem}" + (f" ({context})" if context else "")


def check(doc: dict[str, Any], shared: Mapping[str, Template] | None = None) -> Checked:
    """One Pipeline, judged with the TaskTemplates it may use (``shared``)."""
    pipeline, plan, issues = validate_document(doc, shared)
    metadata = doc.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    warnings = [str(w) for w in injection.warnings(plan)] if plan is not None else []
    return Checked(str(name or "?"), pipeline, plan, [str(i) for i in issues], warnings)


def select(docs: list[dict[str, Any]], name: str | None) -> dict[str, Any]:
    """The one Pipeline to run: the only one, or the one named by ``--pipeline``."""

    def doc_name(doc: dict[str, Any]) -> str:
        meta = doc.get("metadata")
        return str(meta.get("name") or "?") if isinstance(meta, dict) else "?"

    if not docs:
        raise InputError(["no Pipeline document found"])
    if name is not None:
        chosen = [d for d in docs if doc_name(d) == name]
        if not chosen:
            known = ", ".join(doc_name(d) for d in docs)
            raise InputError([f"no pipeline named {name!r} (found: {known})"])
        return chosen[0]
    if len(docs) > 1:
        known = ", ".join(doc_name(d) for d in docs)
        raise InputError([f"several pipelines ({known}): choose one with --pipeline NAME"])
    return docs[0]


def load_plan(path: Path, name: str | None) -> tuple[Pipeline, Plan]:
    if path.suffix == ".py":
        from kascade.sdk.compiler.local_run import PythonDagError, load_python_plan

        try:
            return load_python_plan(path, name)
        except PythonDagError as exc:
            raise InputError(exc.lines) from None
    return plan_of(read_documents(path, every_kind=True), name)


def load_run_file(path: Path, name: str | None) -> tuple[list[dict[str, Any]], Pipeline, Plan]:
    """What ``kascade run`` reads: every document of a YAML file (Pools, ConfigMaps and
    Secrets beside the Pipeline), or the DAG of a Python file (which has no such documents)."""
    if path.suffix == ".py":
        return [], *load_plan(path, name)
    docs = read_documents(path, every_kind=True)
    return docs, *plan_of(docs, name)


def plan_of(docs: list[dict[str, Any]], name: str | None) -> tuple[Pipeline, Plan]:
    """The chosen Pipeline of ``docs``, compiled with the file's TaskTemplates (other kinds
    are passed over)."""
    shared, problems = task_templates.from_manifests(docs)
    checked = check(select([d for d in docs if is_pipeline(d)], name), shared)
    problems += checked.problems
    if problems or checked.pipeline is None or checked.plan is None:
        raise InputError(problems or ["the pipeline is invalid"])
    return checked.pipeline, checked.plan
