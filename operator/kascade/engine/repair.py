"""Schema errors that do not stop validation: every problem of a manifest in one pass.

Pydantic stops at the schema: a misspelt ``triggerRule`` used to hide an unknown
``dependsOn`` and a bad duration in the same file until the first was fixed. Here
the fields the schema refused are taken out of a copy of the document, which is
parsed again, so that the compiler and the value checks can report the rest. Only
optional fields can be taken out; when a required one is wrong (a task's name) the
schema's problems are all there is to say.
"""

from __future__ import annotations

import copy
import functools
import types
import typing
from collections.abc import Iterator
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from kascade.engine.errors import Issue, pydantic_issues

M = TypeVar("M", bound=BaseModel)

MAX_ROUNDS = 3
"""Taking a field out can reveal a problem one level up; a few rounds settle it."""


def parse(model: type[M], doc: dict[str, Any]) -> tuple[M | None, M | None, list[Issue]]:
    """``(parsed, repaired, issues)``: ``parsed`` when the document is valid as written;
    otherwise ``repaired`` is the document without the refused fields (None when a
    required field is wrong), and ``issues`` are the schema's problems."""
    names = field_names(model)
    try:
        return model.model_validate(doc), None, []
    except ValidationError as exc:
        errors = exc.errors()
    issues = pydantic_issues(errors, fields=names)  # type: ignore[arg-type]
    attempt: dict[str, Any] | None = doc
    for _ in range(MAX_ROUNDS):
        assert attempt is not None
        attempt = _without(attempt, errors)  # type: ignore[arg-type]
        if attempt is None:
            return None, None, issues
        try:
            return None, model.model_validate(attempt), issues
        except ValidationError as exc:
            # "Field required" where a refused value was taken out is not news.
            errors = [e for e in exc.errors() if e.get("type") != "missing"]
        if not errors:
            return None, None, issues
        known = {str(i) for i in issues}
        issues += [
            i
            for i in pydantic_issues(errors, fields=names)  # type: ignore[arg-type]
            if str(i) not in known
        ]
    return None, None, issues


def _without(doc: dict[str, Any], errors: list[dict[str, Any]]) -> dict[str, Any] | None:
    """A copy of ``doc`` without the field of each error (None when one cannot go)."""
    if any(err.get("type") == "missing" for err in errors):
        return None
    out = copy.deepcopy(doc)
    for err in errors:
        loc = [part for part in err.get("loc", ()) if isinstance(part, str | int)]
        if not _drop(out, loc):
            return None
    return out


def _drop(doc: Any, loc: list[str | int]) -> bool:
    """Remove the innermost mapping key on ``loc`` (a bad list item takes its list)."""
    cut = max((i for i, part in enumerate(loc) if isinstance(part, str)), default=-1)
    if cut < 0:
        return False
    parent = doc
    for part in loc[:cut]:
        try:
            parent = parent[part]
        except (KeyError, IndexError, TypeError):
            return False
    if not isinstance(parent, dict) or loc[cut] not in parent:
        return True  # taken out already, by an earlier error in the same place
    del parent[loc[cut]]
    return True


@functools.cache
def field_names(model: type[BaseModel]) -> tuple[str, ...]:
    """Every wire name of ``model`` and the models inside it (for "did you mean")."""
    names: dict[str, None] = {}
    seen: set[type[BaseModel]] = set()
    todo = [model]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        for name, info in current.model_fields.items():
            names.setdefault(info.alias or name, None)
            todo.extend(_models_in(info.annotation))
    return tuple(names)


def _models_in(annotation: Any) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        return
    origin = typing.get_origin(annotation)
    if origin is None and not isinstance(annotation, types.UnionType):
        return
    for arg in typing.get_args(annotation):
        yield from _models_in(arg)
