"""YAML text to manifest documents, with every size bounded while loading.

A manifest is read by ``kascade validate`` and ``kascade run`` straight from a file
written by anyone, so loading must not be the place where a small input becomes a
large one:

* **Aliases** (``&a`` / ``*a``) share one value among many places. The loaded data
  shares it too, but whatever walks it later (validation, rendering, JSON) sees every
  copy: 815 bytes of nested aliases are 569 MB of JSON. The document's expanded size
  is measured here, each shared value once, and aliases may add at most
  :data:`MAX_ALIAS_GROWTH` to it. A value that contains itself is refused.
* **Nesting** deeper than :data:`MAX_NESTING` is refused; libyaml's composer recurses
  in C, and ~100,000 nested ``[`` crash the process, so flow nesting is measured
  from the event stream before any node is composed.
* **Numbers** Kubernetes' JSON cannot carry are refused where they are written:
  ``.nan``, ``.inf``, ``1e999`` and integers of more than :data:`MAX_INT_DIGITS`
  digits (Python's own limit for printing one).

The API server only ever hands the operator JSON, so these are rules of the command
line; the same document applied to a cluster would be refused there (kubectl
refuses alias bombs as well).
"""

from __future__ import annotations

import math
from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor

__all__ = [
    "MAX_ALIAS_GROWTH",
    "MAX_INT_DIGITS",
    "MAX_NESTING",
    "LoadError",
    "is_pipeline",
    "load_documents",
]

MAX_NESTING = 100
"""Levels of mappings and lists in one document (a Pipeline needs about 15)."""
MAX_ALIAS_GROWTH = 16 << 20
"""How much aliases may grow a document, in characters of its JSON form (16 MiB)."""
MAX_INT_DIGITS = 4300
"""Python refuses to print an integer with more digits (``sys.get_int_max_str_digits``)."""
_INT_LIMIT = 10**MAX_INT_DIGITS

_BASE = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: ~6x faster


class LoadError(yaml.YAMLError):
    """A document that parses but is refused: it would expand or nest without bound."""


class _Loader(_BASE):  # type: ignore[valid-type,misc]
    """The safe loader with numbers checked where they are written."""


def _int(loader: SafeConstructor, node: yaml.ScalarNode) -> int:
    text = str(node.value)
    if sum(c.isdigit() for c in text) > MAX_INT_DIGITS:
        raise ConstructorError(
            None, None, f"an integer of more than {MAX_INT_DIGITS} digits", node.start_mark
        )
    value = SafeConstructor.construct_yaml_int(loader, node)
    if abs(value) >= _INT_LIMIT:  # sexagesimal 1:2:3:... can grow past it
        raise ConstructorError(
            None, None, f"an integer of more than {MAX_INT_DIGITS} digits", node.start_mark
        )
    return int(value)


def _float(loader: SafeConstructor, node: yaml.ScalarNode) -> float:
    value = SafeConstructor.construct_yaml_float(loader, node)
    if not math.isfinite(value):
        raise ConstructorError(
            None,
            None,
            f"{node.value!r} is not a finite number (JSON, and so Kubernetes, has no "
            "NaN or Infinity)",
            node.start_mark,
        )
    return float(value)


_Loader.add_constructor("tag:yaml.org,2002:int", _int)
_Loader.add_constructor("tag:yaml.org,2002:float", _float)


def load_documents(text: str, *, every_kind: bool = False) -> list[dict[str, Any]]:
    """The Pipeline documents of a YAML stream (or every object, with ``every_kind``);
    empty documents are left out. A document without ``kind`` is a Pipeline.

    Raises ``yaml.YAMLError`` (a :class:`LoadError` for the bounds of this module).
    """
    if text.count("[") + text.count("{") > MAX_NESTING:
        _check_flow_nesting(text)
    docs = []
    for doc in yaml.load_all(text, Loader=_Loader):
        if isinstance(doc, dict) and (every_kind or is_pipeline(doc)):
            check_expansion(doc)
            docs.append(doc)
    return docs


def is_pipeline(doc: dict[str, Any]) -> bool:
    return bool(doc.get("kind", "Pipeline") == "Pipeline")


def _check_flow_nesting(text: str) -> None:
    """Refuse deep nesting from libyaml's events (its parser keeps an explicit stack),
    before its recursive composer sees it."""
    depth = 0
    starts = (yaml.SequenceStartEvent, yaml.MappingStartEvent)
    ends = (yaml.SequenceEndEvent, yaml.MappingEndEvent)
    for event in yaml.parse(text, Loader=_BASE):
        if isinstance(event, starts):
            depth += 1
            if depth > MAX_NESTING:
                line = event.start_mark.line + 1 if event.start_mark else "?"
                raise LoadError(f"line {line}: values nested deeper than {MAX_NESTING} levels")
        elif isinstance(event, ends):
            depth -= 1


def _scalar_size(value: Any) -> int:
    """About the characters ``value`` takes in JSON (the exact figure does not matter)."""
    if isinstance(value, str):
        return len(value) + 2
    return 5


def check_expansion(doc: Any) -> None:
    """Measure ``doc`` as a JSON writer would see it (every alias expanded), counting each
    shared value once for the document's own size; raise LoadError when aliases grow it by
    more than :data:`MAX_ALIAS_GROWTH`, when it nests deeper than :data:`MAX_NESTING`, or
    when a value contains itself. Linear in the document's own size."""
    expanded: dict[int, int] = {}
    """id of a measured container → its size with every alias expanded."""
    own_total = 0
    seen_strings: set[int] = set()
    open_path: set[int] = set()
    stack: list[tuple[Any, int, bool]] = [(doc, 1, False)]
    while stack:
        value, depth, children_done = stack.pop()
        key = id(value)
        if children_done:
            size, own = 2, 2
            for child in _children(value):
                if isinstance(child, dict | list):
                    size += expanded[id(child)] + 1
                    continue
                child_size = _scalar_size(child)
                size += child_size + 1
                if not isinstance(child, str) or id(child) not in seen_strings:
                    own += child_size + 1
                    if isinstance(child, str):
                        seen_strings.add(id(child))
            expanded[key] = size
            own_total += own
            open_path.discard(key)
            if size - own_total > MAX_ALIAS_GROWTH:
                raise LoadError(_growth_message(size, own_total))
            continue
        if key in expanded:
            continue
        if key in open_path:
            raise LoadError("a YAML alias refers to a value that contains it (a recursive alias)")
        if depth > MAX_NESTING:
            raise LoadError(f"values nested deeper than {MAX_NESTING} levels")
        open_path.add(key)
        stack.append((value, depth, True))
        for child in _children(value):
            if isinstance(child, dict | list):
                stack.append((child, depth + 1, False))
    total = expanded.get(id(doc), 0)
    if total - own_total > MAX_ALIAS_GROWTH:
        raise LoadError(_growth_message(total, own_total))


def _children(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [*value.keys(), *value.values()]
    if isinstance(value, list):
        return value
    return []


def _growth_message(expanded: int, own: int) -> str:
    return (
        f"YAML aliases grow this document by more than {MAX_ALIAS_GROWTH >> 20} MiB "
        f"(to over {expanded:,} characters as JSON), the limit for aliases; write the "
        "values out, or share them with spec.defaults or templates"
    )
