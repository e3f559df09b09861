"""The admission webhook's judgement of a Pipeline or a PipelineRun (kopf-free, testable).

For a new or changed spec, in order, reporting every problem of a stage at once:

1. size: a spec the cluster cannot store or copy into its runs is refused
   with its size, not with an HTTP 413 or an etcd error later;
2. the engine's validation (``validate_document`` / ``validate_spec`` and the
   run's params), as ``kascade validate`` and the local runner do it;
3. the pods the operator would create, dry-run on the API server (pod field
   errors with the manifest's path, the namespace's Pod Security level), and
   the author's rights (:mod:`kascade.controller.rights`) by SubjectAccessReview;
4. the approval annotation (:mod:`kascade.controller.approval`) the operator
   will verify before running the spec.

A change of metadata only keeps the approval it had (a user cannot write or
remove one by hand); one without a valid approval gets one if the user who makes
the change may do what the spec asks (how a spec stored before approvals existed
is approved: ``kubectl annotate``), and is never refused. A PipelineRun that
carries a valid approval of its exact spec keeps it (a trigger of an approved
pipeline: ``kascade trigger``, the schedule); one with no spec of its own gets
its Pipeline's when the operator fills the spec in. The operator never approves
a spec on its own authority.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import ValidationError

from kascade.api.pipeline import PipelineSpec, Template
from kascade.api.resources import PipelineRun
from kascade.controller import approval, pod_preview, rights
from kascade.engine import task_templates
from kascade.engine.errors import Issue, pydantic_issues
from kascade.engine.params import resolve_params
from kascade.engine.plan import Plan
from kascade.engine.validation import validate_document, validate_spec
from kascade.kube.access import Access, UserInfo

log = logging.getLogger("kascade.admission")
T = TypeVar("T")

MAX_SPEC_BYTES = 1024 * 1024
"""etcd refuses objects over ~1.5 MiB, and a PipelineRun carries a copy of the spec plus
its status: 1 MiB of spec leaves room for both."""
VALIDATION_SECONDS = 8.0
"""How long the engine's validation may take in a review. The API server waits
``webhook.timeoutSeconds`` (15 s in the chart) for the whole answer, pod dry runs
included; the engine bounds what it compiles (``engine/bounds.py``), and this is the
backstop that turns anything slower into a refusal instead of a timed-out webhook. It
runs in a thread, so the webhook keeps answering other requests meanwhile."""


@dataclass
class Verdict:
    """Allowed with ``approval`` as the annotation (None: none), or refused with ``problems``."""

    problems: list[str] = field(default_factory=list)
    code: int = 422
    approval: str | None = None

    @property
    def allowed(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class Request:
    """One admission request, as the API server sent it."""

    operation: str
    namespace: str
    user: UserInfo
    new: dict[str, Any]
    old: dict[str, Any] | None = None

    def annotation(self, body: dict[str, Any] | None) -> str | None:
        annotations = ((body or {}).get("metadata") or {}).get("annotations") or {}
        value = annotations.get(approval.ANNOTATION)
        return str(value) if value is not None else None

    def spec_unchanged(self) -> bool:
        if self.operation != "UPDATE" or self.old is None:
            return False
        return self.leaving() or bool(self.new.get("spec") == self.old.get("spec"))

    def leaving(self) -> bool:
        """Finalizers come off an object on its way out, whatever its spec."""
        return bool((self.new.get("metadata") or {}).get("deletionTimestamp"))


class Reviewer:
    def __init__(self, access: Access, key: bytes | None) -> None:
        self.access = access
        self.key = key

    async def pipeline(self, req: Request) -> Verdict:
        return await self._changed_or_kept(req, self._pipeline)

    async def run(self, req: Request) -> Verdict:
        return await self._changed_or_kept(req, self._run)

    async def task_template(self, req: Request) -> Verdict:
        """A TaskTemplate is judged on its own (every problem with its path); the rights
        its fields need are checked for each pipeline author that uses it."""
        if req.spec_unchanged():
            return Verdict()
        too_big = _size_problem(req.new.get("spec"), "spec")
        if too_big:
            return Verdict([too_big])
        return Verdict([str(i) for i in task_templates.validate(req.new)])

    async def _shared(self, namespace: str, names: set[str]) -> dict[str, Template]:
        """The namespace's TaskTemplates of these names (missing ones are left out: the
        validation says which)."""
        found = await asyncio.gather(
            *(asyncio.to_thread(self.access.task_template, namespace, n) for n in sorted(names))
        )
        return task_templates.from_manifests([b for b in found if b is not None])[0]

    async def _changed_or_kept(
        self, req: Request, judge: Callable[[Request], Awaitable[Verdict]]
    ) -> Verdict:
        """A new spec is judged; a metadata change keeps the approval the object has.

        An object whose spec has no valid approval (stored before approvals existed, or
        while the webhook was off) is approved by a metadata change of a user who may do
        what it asks (``kubectl annotate``), and a change by anyone else is let through
        without one: a metadata change is never refused.
        """
        if not req.spec_unchanged():
            return await judge(req)
        kept = req.annotation(req.old)
        spec = req.new.get("spec") or {}
        judged = spec if req.new.get("kind") != "PipelineRun" else spec.get("pipelineSpec")
        if req.leaving() or self.key is None or judged is None:
            return Verdict(approval=kept)
        if approval.verifies(self.key, req.namespace, judged, kept):
            return Verdict(approval=kept)
        verdict = await judge(req)
        return verdict if verdict.allowed and verdict.approval else Verdict(approval=kept)

    # -- Pipelines -----------------------------------------------------------------
    async def _pipeline(self, req: Request) -> Verdict:
        spec = req.new.get("spec")
        too_big = _size_problem(spec, "spec")
        if too_big:
            return Verdict([too_big])
        used = await _within_deadline(_used, spec)
        if used is None:
            return Verdict([_too_slow("spec")])
        shared = await self._shared(req.namespace, used)
        checked = await _within_deadline(validate_document, req.new, shared)
        if checked is None:
            return Verdict([_too_slow("spec")])
        model, plan, issues = checked
        if issues or model is None or plan is None:
            return Verdict([str(i) for i in issues])
        return await self._approve(req, plan, model.spec, spec)

    # -- PipelineRuns ----------------------------------------------------------------
    async def _run(self, req: Request) -> Verdict:
        raw = (req.new.get("spec") or {}).get("pipelineSpec")
        too_big = _size_problem(raw, "spec.pipelineSpec")
        if too_big:
            return Verdict([too_big])
        try:
            run = PipelineRun.model_validate(req.new)
        except ValidationError as exc:
            return Verdict([str(i) for i in pydantic_issues(exc.errors())])  # type: ignore[arg-type]
        ref = run.spec.pipeline_ref.name
        referenced = await asyncio.to_thread(self.access.pipeline, req.namespace, ref)
        problems: list[str] = []
        if referenced is None and req.operation == "CREATE":
            problems.append(f"spec.pipelineRef.name: pipeline {ref!r} not found in {req.namespace}")
        spec = run.spec.pipeline_spec
        if spec is None:
            declared = (referenced or {}).get("spec", {}).get("params")
            problems += _param_problems(declared, run.spec.params)
            return Verdict(problems)  # no spec, no approval: the operator copies the Pipeline's
        if run.spec.task_templates is not None:
            shared = task_templates.pinned(run.spec.task_templates)
        else:
            shared = await self._shared(req.namespace, task_templates.used(spec))
        checked = await _within_deadline(validate_spec, spec, ref, shared)
        if checked is None:
            return Verdict([*problems, _too_slow("spec.pipelineSpec")])
        plan, issues = checked
        problems += [_under("spec.pipelineSpec", i) for i in issues]
        problems += [str(i) for i in _params(spec, run.spec.params)]
        if problems or plan is None:
            return Verdict(problems)
        carried = req.annotation(req.new)
        if self.key is not None and approval.verifies(self.key, req.namespace, raw, carried):
            return Verdict(approval=carried)  # a run of an approved spec (trigger, schedule)
        if await asyncio.to_thread(self._is_me, req.user):
            return Verdict()  # never on the operator's own authority: it will not run
        return await self._approve(req, plan, spec, raw)

    # -- both ------------------------------------------------------------------------------
    async def _approve(self, req: Request, plan: Plan, spec: PipelineSpec, raw: Any) -> Verdict:
        pods, denied = await asyncio.gather(
            self._dry_run(plan, spec, req.namespace), self._rights(req, plan, spec)
        )
        needs, unmet = denied
        if pods or unmet:
            code = 403 if unmet else 422
            lines = pods + [f"{rights.describe(n)} ({_who(req.user)} may not)" for n in unmet]
            return Verdict(lines, code=code)
        if self.key is None:
            return Verdict()
        granted = rights.grants(needs)
        return Verdict(
            approval=approval.sign(self.key, req.namespace, raw, req.user.username, granted)
        )

    async def _dry_run(self, plan: Plan, spec: PipelineSpec, namespace: str) -> list[str]:
        previews = pod_preview.previews(plan, spec, namespace)
        problems: list[str] = []
        for preview in previews:  # what the API server could not even decode
            for where, message in pod_preview.quantity_problems(preview.pod):
                problems.append(f"{pod_preview.manifest_path(preview, where, spec)}: {message}")
        if problems:
            return list(dict.fromkeys(problems))
        results = await asyncio.gather(
            *(asyncio.to_thread(self.access.dry_run_pod, namespace, p.pod) for p in previews)
        )
        for preview, rejection in zip(previews, results, strict=True):
            if rejection is None:
                continue
            if rejection.fields:
                for where, message in rejection.fields:
                    problems.append(f"{pod_preview.manifest_path(preview, where, spec)}: {message}")
            else:
                problems.append(f"{preview.path}: {_short(rejection.message)}")
        return list(dict.fromkeys(problems))

    async def _rights(
        self, req: Request, plan: Plan, spec: PipelineSpec
    ) -> tuple[list[rights.Need], list[rights.Need]]:
        needs = rights.needs(plan, spec)
        checks = sorted({c for n in needs for c in n.checks}, key=str)
        answers = await asyncio.gather(
            *(
                asyncio.to_thread(
                    self.access.allowed,
                    req.user,
                    c.namespace or req.namespace,
                    c.verb,
                    c.resource,
                    c.name,
                    c.group,
                )
                for c in checks
            )
        )
        allowed = {c for c, ok in zip(checks, answers, strict=True) if ok}
        unmet = [n for n in needs if not any(c in allowed for c in n.checks)]
        return needs, unmet

    def _is_me(self, user: UserInfo) -> bool:
        return user.username == self.access.whoami()


async def _within_deadline(check: Callable[..., T], *args: Any) -> T | None:
    """``check(*args)`` in a thread, or None when it took over :data:`VALIDATION_SECONDS`."""
    try:
        return await asyncio.wait_for(asyncio.to_thread(check, *args), VALIDATION_SECONDS)
    except TimeoutError:
        log.warning("Validation took over %ss; the spec is refused", VALIDATION_SECONDS)
        return None


def _too_slow(path: str) -> str:
    return (
        f"{path}: validation took longer than {VALIDATION_SECONDS:g} s, the time the "
        "webhook has to answer: the pipeline is too large to check; split it"
    )


def _used(raw: Any) -> set[str]:
    """The TaskTemplates a raw spec names (none when it does not parse: validation says why)."""
    try:
        return task_templates.used(PipelineSpec.model_validate(raw or {}))
    except ValidationError:
        return set()


def _size_problem(spec: Any, path: str) -> str | None:
    size = len(json.dumps(spec, separators=(",", ":")).encode()) if spec is not None else 0
    if size <= MAX_SPEC_BYTES:
        return None
    return (
        f"{path}: the spec is {size} bytes, over Kascade's limit of {MAX_SPEC_BYTES} "
        "(etcd keeps objects under 1.5 MiB, and every PipelineRun copies the spec): move "
        "long scripts into images or ConfigMaps, or split the pipeline"
    )


def _params(spec: PipelineSpec, given: dict[str, Any] | None) -> list[Issue]:
    _, issues = resolve_params(spec.params, given)
    return [Issue(f"spec.{i.path}", i.message) for i in issues]


def _param_problems(declared: Any, given: dict[str, Any] | None) -> list[str]:
    if not declared:
        return []
    try:
        spec = PipelineSpec.model_validate({"params": declared})
    except ValidationError:
        return []  # the Pipeline's own problem, reported on it
    return [str(i) for i in _params(spec, given)]


def _under(prefix: str, issue: Issue) -> str:
    """An issue of an inline spec, with the path it has inside the PipelineRun."""
    path = issue.path
    rest = path.removeprefix("spec") if path.startswith("spec") else f".{path}"
    return f"{prefix}{rest}: {issue.message}"


def _who(user: UserInfo) -> str:
    return f"user {user.username!r}" if user.username else "the requesting user"


def _short(message: str, limit: int = 600) -> str:
    return message if len(message) <= limit else message[: limit - 3] + "..."
