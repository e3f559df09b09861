"""Airflow's ``Param``: a typed run parameter, compiled to ``spec.params``.

Only the JSON-schema keywords the API checks are accepted (type, enum, minimum,
maximum, description); a keyword that would validate a value (``pattern``,
``minLength``...) is refused rather than silently not enforced.
"""

from __future__ import annotations

from typing import Any

from kascade.sdk.exceptions import UnsupportedFeature

_TYPES = {"string", "integer", "number", "boolean", "array", "object"}
#: Display-only keywords of Airflow's trigger form: kept out of the manifest, they change nothing.
_DISPLAY_ONLY = {"title", "description_md", "values_display", "section", "examples", "const"}
_CHECKED = {"type", "enum", "minimum", "maximum", "description"}


class _Unset:
    def __repr__(self) -> str:
        return "NOTSET"


NOTSET: Any = _Unset()


def _type_of(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "string"


class Param:
    """``Param(default, type=..., enum=..., minimum=..., maximum=..., description=...)``."""

    def __init__(self, default: Any = NOTSET, description: str | None = None, **schema: Any):
        self.value = default
        self.description = description
        self.schema = dict(schema)
        for key in schema:
            if key not in _CHECKED and key not in _DISPLAY_ONLY:
                raise UnsupportedFeature(
                    f"Param(..., {key}=...)",
                    "Kascade params check type, enum, minimum and maximum only; "
                    "check the value in the task instead",
                )

    def resolve(self, value: Any = NOTSET) -> Any:
        return self.value if value is NOTSET else value

    def dump(self, name: str) -> dict[str, Any]:
        """The API's Param (wire form)."""
        kind = self.schema.get("type")
        if isinstance(kind, list):
            kinds = [k for k in kind if k != "null"]
            if len(kinds) != 1:
                raise UnsupportedFeature(
                    f"params[{name!r}] type={kind!r}", "give one type (null is always allowed)"
                )
            kind = kinds[0]
        if kind is None:
            kind = _type_of(self.value) if self.value is not NOTSET else "string"
        if kind not in _TYPES:
            raise ValueError(f"params[{name!r}]: type {kind!r} is not one of {sorted(_TYPES)}")
        out: dict[str, Any] = {"type": kind}
        if self.value is NOTSET:
            out["required"] = True
        elif self.value is not None:
            out["default"] = list(self.value) if isinstance(self.value, tuple) else self.value
        if self.schema.get("enum") is not None:
            out["enum"] = list(self.schema["enum"])
        for key in ("minimum", "maximum"):
            if self.schema.get(key) is not None:
                out[key] = self.schema[key]
        description = self.description or self.schema.get("description")
        if description:
            out["description"] = str(description)
        return out


class ParamsDict(dict[str, Any]):
    """``context['params']``: plain values; ``dag.params`` holds the declarations."""


def as_param(value: Any) -> Param:
    return value if isinstance(value, Param) else Param(value)
