"""The four kinds as whole objects (apiVersion, kind, metadata, spec, status).

Each ``KindInfo`` also carries what the CRD needs beyond the schema (plural,
short names, printer columns), so that one place describes a kind completely.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from kascade.api.base import API_VERSION, Model
from kascade.api.caches import TaskCacheSpec, TaskCacheStatus
from kascade.api.names import NamespaceName, ObjectName
from kascade.api.pipeline import PipelineSpec, PipelineStatus
from kascade.api.pools import PoolSpec, PoolStatus
from kascade.api.runs import (
    PipelineRunSpec,
    PipelineRunStatus,
    PipelineSnapshotSpec,
    TaskRunSpec,
    TaskRunStatus,
)
from kascade.api.templates import TaskTemplateSpec, TaskTemplateStatus

EXPECT_ANNOTATION = "kascade.io/expect"
"""``kascade.io/expect: failed`` marks an example that is meant to fail."""


class ObjectMeta(BaseModel):
    """The parts of metadata Kascade reads; everything else is kept as is.

    Names follow the API server's rules (``api/names.py``): the local runner makes
    folders of them, and ``kascade validate`` must refuse what a cluster refuses.
    """

    model_config = ConfigDict(extra="allow")

    name: ObjectName | None = None
    generate_name: str | None = None
    namespace: NamespaceName | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None


class _Object(Model):
    model_config = ConfigDict(extra="forbid")
    api_version: Literal["kascade.io/v1alpha1"] = API_VERSION  # type: ignore[assignment]
    metadata: ObjectMeta = ObjectMeta()

    @property
    def name(self) -> str:
        return self.metadata.name or ""


class Pipeline(_Object):
    kind: Literal["Pipeline"] = "Pipeline"
    spec: PipelineSpec
    status: PipelineStatus | None = None


class PipelineRun(_Object):
    kind: Literal["PipelineRun"] = "PipelineRun"
    spec: PipelineRunSpec
    status: PipelineRunStatus | None = None


class TaskRun(_Object):
    kind: Literal["TaskRun"] = "TaskRun"
    spec: TaskRunSpec
    status: TaskRunStatus | None = None


class PipelineSnapshot(_Object):
    kind: Literal["PipelineSnapshot"] = "PipelineSnapshot"
    spec: PipelineSnapshotSpec


class Pool(_Object):
    kind: Literal["Pool"] = "Pool"
    spec: PoolSpec
    status: PoolStatus | None = None


class TaskTemplate(_Object):
    kind: Literal["TaskTemplate"] = "TaskTemplate"
    spec: TaskTemplateSpec
    status: TaskTemplateStatus | None = None


class TaskCache(_Object):
    kind: Literal["TaskCache"] = "TaskCache"
    spec: TaskCacheSpec
    status: TaskCacheStatus | None = None


@dataclass(frozen=True)
class Column:
    name: str
    json_path: str
    type: str = "string"
    priority: int = 0
    description: str = ""

    def dump(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.type, "jsonPath": self.json_path}
        if self.description:
            out["description"] = self.description
        if self.priority:
            out["priority"] = self.priority
        return out


@dataclass(frozen=True)
class KindInfo:
    kind: str
    plural: str
    short_names: tuple[str, ...]
    spec: type[Model]
    status: type[Model] | None
    """None: the kind has no status (an immutable object)."""
    description: str
    columns: tuple[Column, ...] = field(default=())

    @property
    def singular(self) -> str:
        return self.kind.lower()


AGE = Column("Age", ".metadata.creationTimestamp", "date")

KINDS: tuple[KindInfo, ...] = (
    KindInfo(
        "Pipeline",
        "pipelines",
        ("kpl",),
        PipelineSpec,
        PipelineStatus,
        "A pipeline: a DAG of container tasks with a schedule (an Airflow DAG).",
        (
            Column("Schedule", ".spec.schedule"),
            Column("Valid", '.status.conditions[?(@.type=="Valid")].status'),
            Column("Tasks", ".status.taskCount", "integer"),
            Column("Active", ".status.activeRuns", "integer"),
            Column("Last Run", ".status.lastRun"),
            Column("Next Run", ".status.nextRun"),
            Column("Suspended", ".spec.suspend", "boolean", priority=1),
            AGE,
        ),
    ),
    KindInfo(
        "PipelineRun",
        "pipelineruns",
        ("kpr",),
        PipelineRunSpec,
        PipelineRunStatus,
        "One execution of a Pipeline for one data interval (an Airflow DAG run).",
        (
            Column("Pipeline", ".spec.pipelineRef.name"),
            Column("Phase", ".status.phase"),
            Column("Progress", ".status.progress"),
            Column("Logical Date", ".spec.logicalDate"),
            Column("Trigger", ".spec.trigger.kind", priority=1),
            Column("Started", ".status.startTime", "date"),
            AGE,
        ),
    ),
    KindInfo(
        "TaskRun",
        "taskruns",
        ("ktr",),
        TaskRunSpec,
        TaskRunStatus,
        "One task of one PipelineRun (an Airflow task instance); one pod per attempt.",
        (
            Column("Run", ".spec.pipelineRunRef.name"),
            Column("Task", ".spec.taskName"),
            Column("State", ".status.state"),
            Column("Message", ".status.message", priority=1),
            AGE,
        ),
    ),
    KindInfo(
        "PipelineSnapshot",
        "pipelinesnapshots",
        ("kps",),
        PipelineSnapshotSpec,
        None,
        "A Pipeline's spec frozen for its runs: immutable, named after its content, shared "
        "by the runs of one version.",
        (
            Column("Pipeline", ".spec.pipelineRef.name"),
            Column("Hash", ".spec.specHash"),
            AGE,
        ),
    ),
    KindInfo(
        "Pool",
        "pools",
        ("kpool",),
        PoolSpec,
        PoolStatus,
        "A named slot limit shared by the pipelines of a namespace (an Airflow pool).",
        (
            Column("Slots", ".spec.slots", "integer"),
            Column("Used", ".status.used", "integer"),
            Column("Queued", ".status.queued", "integer"),
            AGE,
        ),
    ),
    KindInfo(
        "TaskTemplate",
        "tasktemplates",
        ("ktt",),
        TaskTemplateSpec,
        TaskTemplateStatus,
        "A task or group template shared by the pipelines of a namespace (Tekton's Task).",
        (
            Column("Valid", '.status.conditions[?(@.type=="Valid")].status'),
            Column("Description", ".spec.description", priority=1),
            AGE,
        ),
    ),
    KindInfo(
        "TaskCache",
        "taskcaches",
        ("kcache",),
        TaskCacheSpec,
        TaskCacheStatus,
        "The cache entries of one Pipeline's tasks (``cache``), written by the operator.",
        (Column("Pipeline", ".spec.pipelineRef.name"), AGE),
    ),
)
