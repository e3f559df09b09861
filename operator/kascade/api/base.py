"""Shared model base: camelCase on the wire, snake_case in Python, typos rejected.

``extra="forbid"`` makes a misspelt field a validation error that names it,
instead of a silently ignored key (the most common manifest mistake).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema
from pydantic.alias_generators import to_camel

from kascade.api.names import NamespaceName, ObjectName

GROUP = "kascade.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"


class Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        use_attribute_docstrings=True,
    )

    def dump(self) -> dict[str, Any]:
        """The wire form: camelCase keys, unset fields left out (they mean 'default')."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


#: A Kubernetes-native object we pass through untouched (env, volumes, resources...).
#: The API server validates it when the pod is created; we keep our schema open.
KubeObject = Annotated[
    dict[str, Any],
    WithJsonSchema({"type": "object", "x-kubernetes-preserve-unknown-fields": True}),
]

#: Any JSON value (params, outputs, mapped items).
JsonValue = Annotated[
    Any,
    WithJsonSchema({"x-kubernetes-preserve-unknown-fields": True}),
]

#: A duration such as ``30s``, ``5m``, ``1h30m``, ``2d`` (or a number of seconds).
Duration = Annotated[
    str,
    WithJsonSchema(
        {
            "type": "string",
            "description": "A duration: 30s, 5m, 1h30m, 2d, 1w (a bare number means seconds).",
        }
    ),
    Field(min_length=1, max_length=32),
]

Timestamp = datetime


class Condition(Model):
    """A Kubernetes-style condition (``kubectl wait --for=condition=...`` works on it)."""

    type: str
    """What the condition is about (Valid, Succeeded)."""
    status: str
    """True, False or Unknown."""
    reason: str | None = None
    """A CamelCase word for why it has this status."""
    message: str | None = None
    """Why, in words."""
    last_transition_time: datetime | None = None
    """When the status last changed."""


class ObjectRef(Model):
    """A reference to another object by name (same namespace unless given)."""

    name: ObjectName
    """The object's name."""
    namespace: NamespaceName | None = None
    """Its namespace (default: the referring object's)."""


class Interval(Model):
    """A data interval [start, end) as ISO date-times."""

    start: str
    """The interval's start (inclusive), an ISO date-time."""
    end: str
    """The interval's end (exclusive), an ISO date-time."""
