"""The namespace's TaskTemplates, as the operator keeps them: validity, lookup, pinning.

A Pipeline's validity depends on the TaskTemplates it uses, so the World re-judges the
pipelines that use one when it changes. A run pins the versions it starts with: before
its first task the operator copies every TaskTemplate its spec uses into the run
(``spec.taskTemplates``: name, generation, uid, spec); the run is compiled from those
copies from then on, after a restart too. Pinning is one patch of the run's spec and is
idempotent (a run that has its copies is never pinned again).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Any

from kascade.api.pipeline import PipelineSpec, Template
from kascade.api.resources import Pipeline
from kascade.api.templates import PinnedTaskTemplate, TaskTemplateSpec
from kascade.controller import pipelines
from kascade.engine import task_templates
from kascade.engine.errors import Issue
from kascade.engine.plan import Plan
from kascade.engine.validation import validate_document
from kascade.kube.client import Kube

PLURAL = "tasktemplates"
Key = tuple[str, str]


class TemplateIndex:
    def __init__(self, kube: Kube, clock: Callable[[], datetime]) -> None:
        self.kube = kube
        self.clock = clock
        self.bodies: dict[Key, dict[str, Any]] = {}

    def on_event(self, event: str, body: dict[str, Any]) -> Key:
        meta = body["metadata"]
        key = (meta["namespace"], meta["name"])
        if event == "DELETED":
            self.bodies.pop(key, None)
        else:
            self.bodies[key] = body
        return key

    async def write_validity(self, body: dict[str, Any]) -> list[str]:
        """Judge a TaskTemplate on its own and write its Valid condition; its problems."""
        meta = body["metadata"]
        generation = meta.get("generation")
        problems = [str(i) for i in task_templates.validate(body)]
        if (body.get("status") or {}).get("observedGeneration") == generation:
            return problems
        status = pipelines.validity(problems, None, generation, self.clock())
        status.pop("taskCount", None)
        await asyncio.to_thread(
            self.kube.patch_status, PLURAL, meta["namespace"], meta["name"], status
        )
        return problems

    async def body(self, namespace: str, name: str) -> dict[str, Any] | None:
        """A TaskTemplate as last seen, or read now (its watch event may not have come yet)."""
        key = (namespace, name)
        if key not in self.bodies:
            found = await asyncio.to_thread(self.kube.get, PLURAL, namespace, name)
            if found is None:
                return None
            self.bodies[key] = found
        return self.bodies[key]

    async def shared(self, namespace: str, spec: PipelineSpec) -> dict[str, Template]:
        """The TaskTemplates the spec uses, as the compiler takes them (missing ones are left
        out: the validation says which)."""
        found = [await self.body(namespace, n) for n in sorted(task_templates.used(spec))]
        return task_templates.from_manifests([b for b in found if b is not None])[0]

    async def validated(
        self, namespace: str, body: dict[str, Any]
    ) -> tuple[Pipeline | None, Plan | None, list[Issue]]:
        """A Pipeline validated with the TaskTemplates of its namespace that it uses."""
        try:
            spec = PipelineSpec.model_validate(body.get("spec") or {})
        except ValueError:
            return validate_document(body)
        return validate_document(body, await self.shared(namespace, spec))

    def users(self, namespace: str, name: str, known: dict[Key, dict[str, Any]]) -> list[Key]:
        """The pipelines of the namespace that use this TaskTemplate."""
        out = []
        for key, body in known.items():
            if key[0] != namespace:
                continue
            try:
                spec = PipelineSpec.model_validate(body.get("spec") or {})
            except ValueError:
                continue
            if name in task_templates.used(spec):
                out.append(key)
        return out

    async def pinning(self, namespace: str, run: dict[str, Any]) -> dict[str, Any] | str | None:
        """The patch that pins the TaskTemplates a run's spec uses and it has not pinned yet
        (None: nothing to pin), or why it cannot run (a TaskTemplate is missing)."""
        raw = (run.get("spec") or {}).get("pipelineSpec") or {}
        try:
            used = task_templates.used(PipelineSpec.model_validate(raw))
        except ValueError:
            return None  # an invalid spec: the run fails on validation
        have = list((run.get("spec") or {}).get("taskTemplates") or [])
        missing = sorted(used - {str(p.get("name")) for p in have})
        if not missing:
            return None
        for name in missing:
            body = await self.body(namespace, name)
            if body is None:
                return f"TaskTemplate {name!r} not found in namespace {namespace}"
            meta = body["metadata"]
            copy = PinnedTaskTemplate(
                name=name,
                generation=meta.get("generation"),
                uid=meta.get("uid"),
                spec=TaskTemplateSpec.model_validate(body.get("spec") or {}),
            )
            have.append(copy.model_dump(by_alias=True, exclude_none=True, mode="json"))
        return {"spec": {"taskTemplates": have}}
