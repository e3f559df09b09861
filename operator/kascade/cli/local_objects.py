"""What a local run takes from the other documents of its file: Pools, ConfigMaps, Secrets.

On a cluster these objects live beside the Pipeline; ``kascade run`` finds them in the
same file (``---`` separated). Nothing is dropped silently: a pool that is nowhere is an
error before anything runs (Airflow does not schedule a task whose pool does not exist),
a variables/connections source that is not in the file is said, and so is every document
the local runner does not use. Secret values are never printed.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from kascade.api.pipeline import PipelineSpec
from kascade.api.resources import Pool
from kascade.engine import environment
from kascade.engine.errors import pydantic_issues
from kascade.engine.plan import Plan
from kascade.engine.pools import pool_name_problem
from kascade.engine.validation import is_pipeline


@dataclass
class LocalObjects:
    pools: dict[str, int] = field(default_factory=dict)
    config_maps: dict[str, dict[str, str]] = field(default_factory=dict)
    secrets: dict[str, dict[str, str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    """Said to the user, the run goes on."""
    problems: list[str] = field(default_factory=list)
    """The run cannot start."""


def read_objects(docs: list[dict[str, Any]]) -> LocalObjects:
    found = LocalObjects()
    for i, doc in enumerate(docs):
        if is_pipeline(doc):
            continue
        kind = str(doc.get("kind"))
        meta = doc.get("metadata")
        name = str(meta.get("name") or "") if isinstance(meta, dict) else ""
        where = f"document {i + 1} ({kind} {name or '?'})"
        if kind == "Pool":
            _read_pool(doc, where, found)
        elif kind == "ConfigMap":
            found.config_maps[name] = _strings(doc.get("data"))
        elif kind == "Secret":
            _read_secret(doc, name, where, found)
        elif kind == "TaskTemplate":
            continue  # compiled with the pipeline (documents.plan_of)
        else:
            found.notes.append(f"{where}: not used by the local runner")
    return found


def _read_pool(doc: dict[str, Any], where: str, found: LocalObjects) -> None:
    try:
        pool = Pool.model_validate(doc)
    except ValidationError as exc:
        found.problems += [f"{where}: {i}" for i in pydantic_issues(exc.errors())]  # type: ignore[arg-type]
        return
    problem = pool_name_problem(pool.name)
    if problem is not None:
        found.problems.append(f"{where}: metadata.name: {problem}")
        return
    found.pools[pool.name] = pool.spec.slots


def _read_secret(doc: dict[str, Any], name: str, where: str, found: LocalObjects) -> None:
    values: dict[str, str] = {}
    for key, raw in _strings(doc.get("data")).items():
        try:
            values[key] = base64.b64decode(raw, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            found.problems.append(f"{where}: data.{key} is not base64 of UTF-8 text")
    values.update(_strings(doc.get("stringData")))
    found.secrets[name] = values


def _strings(data: Any) -> dict[str, str]:
    if not isinstance(data, dict):
        return {}
    return {str(k): str(v) for k, v in data.items()}


def pool_problems(plan: Plan, pools: Mapping[str, int]) -> list[str]:
    """Tasks whose pool is nowhere, or too small for them: the run could never finish."""
    problems: dict[str, None] = {}
    for task in plan.tasks:
        if task.pool is None:
            continue
        path = task.field_path("pool", "pool")
        size = pools.get(task.pool)
        if size is None:
            problems[
                f"{path}: pool {task.pool!r} is not defined here: add a Pool document to the "
                f"file or --pool {task.pool}=SLOTS"
            ] = None
        elif task.pool_slots > size:
            problems[
                f"{task.field_path('pool_slots', 'poolSlots')}: {task.id} needs "
                f"{task.pool_slots} slots and pool {task.pool!r} has {size}"
            ] = None
    return list(problems)


def run_environment(spec: PipelineSpec, found: LocalObjects) -> tuple[dict[str, str], list[str]]:
    """The variables and connections of the run, as a pod's envFrom gives them; and a
    note for each source that is not in the file."""
    sources = [
        (f"spec.variables[{i}]", "ConfigMap", var.config_map, var.prefix, found.config_maps)
        for i, var in enumerate(spec.variables or [])
    ] + [
        (
            f"spec.connections[{i}]",
            "Secret",
            conn.secret,
            environment.connection_prefix(conn.name),
            found.secrets,
        )
        for i, conn in enumerate(spec.connections or [])
    ]
    env: dict[str, str] = {}
    notes: list[str] = []
    for path, kind, name, prefix, objects in sources:
        data = objects.get(name)
        if data is None:
            notes.append(
                f"{path}: {kind} {name!r} is not in the file: its keys are not set in this run"
            )
        else:
            env.update(environment.from_keys(data, prefix))
    return env, notes
