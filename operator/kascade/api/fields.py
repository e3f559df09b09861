"""Field types shared by the Pipeline kind's models: task names and references, container
environment variables, and references to a Secret's key."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from kascade.api.base import KubeObject, Model
from kascade.api.names import ObjectName

#: Task and group names: Airflow-style ids; '.' is reserved for group qualification.
Name = Annotated[
    str,
    Field(min_length=1, max_length=63, pattern=r"^[A-Za-z0-9]([A-Za-z0-9_-]*[A-Za-z0-9])?$"),
]
#: A reference to a task or group, possibly qualified by group (``transform.clean``).
Ref = Annotated[
    str,
    Field(
        min_length=1,
        max_length=253,
        pattern=r"^[A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9])?$",
    ),
]


class EnvVar(Model):
    """A container environment variable (as in a pod spec)."""

    name: str = Field(min_length=1)
    """The variable's name."""
    value: str | None = None
    """Templated: may use ``{{ ds }}``, ``{{ params.x }}``, ``{{ tasks.t.outputs.o }}``."""
    value_from: KubeObject | None = None
    """Kubernetes ``valueFrom`` (secretKeyRef, configMapKeyRef, fieldRef)."""


class SecretKeyRef(Model):
    """A key of a Secret; secrets are referenced, never copied into specs or status."""

    name: ObjectName
    """The Secret's name (in the pipeline's namespace)."""
    key: str
    """The key of the Secret's data."""
