"""The admission webhook's verdicts (Reviewer), with the API server's answers given.

The SubjectAccessReview and dry-run answers come from a table here; the e2e tier
(tests/e2e/test_security.py) runs the same reviewer against the real API server.
"""

from __future__ import annotations

import asyncio
import copy
from dataclasses import dataclass, field
from typing import Any

from helpers_engine import task

from kascade.controller import approval
from kascade.controller.review import MAX_SPEC_BYTES, Request, Reviewer
from kascade.kube.access import PodRejection, UserInfo

KEY = b"s" * 32
ALICE = UserInfo("alice", groups=("system:authenticated",))
OPERATOR = UserInfo("system:serviceaccount:kascade:kascade")


@dataclass
class Answers:
    """What the API server would say: allowed (verb, resource, name) triples, pod rejections."""

    grants: set[tuple[str, str, str | None]] = field(default_factory=set)
    rejection: PodRejection | None = None
    pipelines: dict[str, dict[str, Any]] = field(default_factory=dict)
    asked: list[tuple[str, str, str | None]] = field(default_factory=list)
    where: list[tuple[str, str, str]] = field(default_factory=list)
    """(verb, namespace, API group) of every question."""

    def allowed(self, user: UserInfo, ns: str, verb: str, res: str, name: str | None = None,
                   group: str = "") -> bool:  # fmt: skip
        self.asked.append((verb, res, name))
        self.where.append((verb, ns, group))
        return (verb, res, name) in self.grants or (verb, res, None) in self.grants

    def dry_run_pod(self, namespace: str, pod: dict[str, Any]) -> PodRejection | None:
        return self.rejection

    def pipeline(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.pipelines.get(name)

    def whoami(self) -> str:
        return OPERATOR.username


def pipeline(tasks: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "kascade.io/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": "p", "namespace": "ns"},
        "spec": {"tasks": tasks, **spec},
    }


def review(answers: Answers, kind: str, new: dict[str, Any], **kw: Any) -> Any:
    reviewer = Reviewer(answers, KEY)  # type: ignore[arg-type]
    req = Request(
        operation=kw.pop("operation", "CREATE"),
        namespace="ns",
        user=kw.pop("user", ALICE),
        new=new,
        **kw,
    )
    return asyncio.run(reviewer.pipeline(req) if kind == "Pipeline" else reviewer.run(req))


def test_a_plain_pipeline_is_approved_by_its_author() -> None:
    doc = pipeline([task("a")])
    verdict = review(Answers(), "Pipeline", doc)
    assert verdict.allowed
    parsed = approval.parse(verdict.approval)
    assert parsed is not None and parsed.by == "alice" and parsed.grants == ()
    assert approval.verifies(KEY, "ns", doc["spec"], verdict.approval)


def test_what_the_author_may_not_do_is_refused_with_403_and_every_reason() -> None:
    doc = pipeline(
        [
            task(
                "a",
                serviceAccountName="admin",
                securityContext={"privileged": True},
                envFrom=[{"secretRef": {"name": "db"}}],
            )
        ]
    )
    verdict = review(Answers(), "Pipeline", doc)
    assert not verdict.allowed and verdict.code == 403
    text = "\n".join(verdict.problems)
    assert "spec.tasks[0].serviceAccountName: runs pods as ServiceAccount 'admin'" in text
    assert "create pods or use serviceaccounts/admin" in text
    assert "spec.tasks[0].envFrom[0].secretRef: reads Secret 'db'" in text
    assert "privileged: true" in text
    assert "user 'alice' may not" in text


def test_an_author_with_the_rights_gets_them_recorded() -> None:
    doc = pipeline([task("a", serviceAccountName="etl", envFrom=[{"secretRef": {"name": "db"}}])])
    answers = Answers(grants={("use", "serviceaccounts", "etl"), ("get", "secrets", "db")})
    verdict = review(answers, "Pipeline", doc)
    assert verdict.allowed, verdict.problems
    parsed = approval.parse(verdict.approval)
    assert parsed is not None
    assert parsed.grants == ("secret:db", "serviceaccount:etl")


def test_pod_rejections_come_back_with_manifest_paths() -> None:
    doc = pipeline([task("a", env=[{"name": "BAD NAME", "value": "x"}])])
    answers = Answers(
        rejection=PodRejection(
            "Pod is invalid", (("spec.containers[0].env[0].name", "Invalid value"),)
        )
    )
    verdict = review(answers, "Pipeline", doc)
    assert verdict.code == 422
    assert verdict.problems == ["spec.tasks[0].env[0].name: Invalid value"]
    forbidden = Answers(
        rejection=PodRejection('violates PodSecurity "restricted:latest": hostPath')
    )
    verdict = review(forbidden, "Pipeline", doc)
    assert verdict.problems == ['spec.tasks[0]: violates PodSecurity "restricted:latest": hostPath']


def test_validation_errors_come_first_and_oversized_specs_are_named() -> None:
    cyclic = pipeline([task("a", "b"), task("b", "a")])
    verdict = review(Answers(), "Pipeline", cyclic)
    assert verdict.code == 422 and "dependency cycle" in verdict.problems[0]
    huge = pipeline([task("a", script="x" * (MAX_SPEC_BYTES + 10))])
    verdict = review(Answers(), "Pipeline", huge)
    assert "over Kascade's limit of 1048576" in verdict.problems[0]
    assert verdict.problems[0].startswith("spec: the spec is ")


def test_metadata_updates_keep_the_stored_approval_and_drop_forged_ones() -> None:
    old = pipeline([task("a", serviceAccountName="etl")])
    stored = approval.sign(KEY, "ns", old["spec"], "bob", ["serviceaccount:etl"])
    old["metadata"]["annotations"] = {approval.ANNOTATION: stored}
    new = copy.deepcopy(old)
    new["metadata"]["annotations"] = {approval.ANNOTATION: "forged", "team": "x"}
    verdict = review(Answers(), "Pipeline", new, operation="UPDATE", old=old)
    assert verdict.allowed and verdict.approval == stored


def test_a_metadata_change_approves_an_old_spec_if_its_author_may() -> None:
    """How Pipelines stored before approvals existed get one: `kubectl annotate`."""
    old = pipeline([task("a", serviceAccountName="etl")])
    new = copy.deepcopy(old)
    new["metadata"]["annotations"] = {"kascade.io/approve": "1"}
    may = Answers(grants={("use", "serviceaccounts", "etl")})
    verdict = review(may, "Pipeline", new, operation="UPDATE", old=old)
    parsed = approval.parse(verdict.approval)
    assert verdict.allowed and parsed is not None and parsed.by == "alice"
    # Someone without the rights may still change metadata; it stays unapproved.
    verdict = review(Answers(), "Pipeline", new, operation="UPDATE", old=old)
    assert verdict.allowed and verdict.approval is None
    # An old invalid spec does not block metadata changes either.
    cyclic = pipeline([task("a", "b"), task("b", "a")])
    relabelled = copy.deepcopy(cyclic)
    relabelled["metadata"]["labels"] = {"team": "x"}
    verdict = review(may, "Pipeline", relabelled, operation="UPDATE", old=cyclic)
    assert verdict.allowed and verdict.approval is None


def run_of(spec: dict[str, Any] | None, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "kascade.io/v1alpha1",
        "kind": "PipelineRun",
        "metadata": {"name": "r", "namespace": "ns"},
        "spec": {"pipelineRef": {"name": "p"}, **fields},
    }
    if spec is not None:
        body["spec"]["pipelineSpec"] = spec
    return body


def test_a_run_of_a_missing_pipeline_or_with_bad_params_is_refused() -> None:
    verdict = review(Answers(), "PipelineRun", run_of({"tasks": [task("a")]}))
    assert verdict.problems == ["spec.pipelineRef.name: pipeline 'p' not found in ns"]
    declared = {"spec": {"params": {"n": {"type": "integer"}}}}
    answers = Answers(pipelines={"p": declared})
    verdict = review(answers, "PipelineRun", run_of(None, params={"n": "three"}))
    assert verdict.problems == ["spec.params.n: param 'n' must be of type integer, got 'three'"]


def test_an_inline_spec_is_validated_like_a_pipeline() -> None:
    answers = Answers(pipelines={"p": pipeline([task("a")])})
    verdict = review(answers, "PipelineRun", run_of({"tasks": [task("a", "b"), task("b", "a")]}))
    assert verdict.problems == [
        "spec.pipelineSpec.tasks[0].dependsOn: dependency cycle: a -> b -> a"
    ]


def test_a_run_keeps_a_valid_approval_of_its_exact_spec() -> None:
    spec = {"tasks": [task("a", serviceAccountName="admin")]}
    signed = approval.sign(KEY, "ns", spec, "admin-user", ["serviceaccount:admin"])
    body = run_of(spec)
    body["metadata"]["annotations"] = {approval.ANNOTATION: signed}
    answers = Answers(pipelines={"p": pipeline(spec["tasks"])})
    verdict = review(answers, "PipelineRun", body)  # alice triggers an approved pipeline
    assert verdict.allowed and verdict.approval == signed
    body["spec"]["pipelineSpec"]["tasks"][0]["serviceAccountName"] = "other"
    verdict = review(answers, "PipelineRun", body)  # not the approved spec any more
    assert not verdict.allowed and "ServiceAccount 'other'" in verdict.problems[0]


def test_the_operator_never_approves_on_its_own_authority() -> None:
    answers = Answers(pipelines={"p": pipeline([task("a")])}, grants={("create", "pods", None)})
    verdict = review(answers, "PipelineRun", run_of({"tasks": [task("a")]}), user=OPERATOR)
    assert verdict.allowed and verdict.approval is None
    assert answers.asked == []


def test_a_pipeline_that_sends_email_needs_its_smtp_secret() -> None:
    doc = pipeline([task("a")], defaults={"email": ["ops@example.com"]})
    verdict = review(Answers(), "Pipeline", doc)
    assert verdict.code == 403
    assert verdict.problems == [
        "spec.defaults.email: reads Secret 'kascade-smtp' (the SMTP settings), which needs "
        "get secrets/kascade-smtp (user 'alice' may not)"
    ]
    verdict = review(Answers(grants={("get", "secrets", "kascade-smtp")}), "Pipeline", doc)
    parsed = approval.parse(verdict.approval)
    assert verdict.allowed and parsed is not None and parsed.grants == ("secret:kascade-smtp",)
    own = pipeline(
        [{"name": "m", "sendEmail": {"to": ["a@example.com"], "subject": "s"}}],
        smtp={"secret": "mailer"},
    )
    verdict = review(Answers(), "Pipeline", own)
    assert verdict.problems[0].startswith("spec.smtp.secret: reads Secret 'mailer'")
    quiet = review(Answers(), "Pipeline", pipeline([task("a")]))
    assert quiet.allowed  # no e-mail, no Secret


def test_triggering_needs_create_pipelineruns_where_the_run_goes() -> None:
    trigger = {"name": "t", "triggerPipeline": {"pipeline": "child", "namespace": "other",
                                                 "resetDagRun": True}}  # fmt: skip
    answers = Answers()
    verdict = review(answers, "Pipeline", pipeline([trigger]))
    assert verdict.code == 403
    assert verdict.problems == [
        "spec.tasks[0].triggerPipeline.pipeline: starts runs of pipeline 'child' in namespace "
        "other, which needs create pipelineruns in namespace other (user 'alice' may not)",
        "spec.tasks[0].triggerPipeline.resetDagRun: replaces runs of pipeline 'child' in "
        "namespace other, which needs delete pipelineruns in namespace other "
        "(user 'alice' may not)",
    ]
    assert sorted(answers.where) == [
        ("create", "other", "kascade.io"),
        ("delete", "other", "kascade.io"),
    ]
    same = {"name": "t", "triggerPipeline": {"pipeline": "child"}}
    may = Answers(grants={("create", "pipelineruns", None)})
    verdict = review(may, "Pipeline", pipeline([same]))
    parsed = approval.parse(verdict.approval)
    assert verdict.allowed and parsed is not None and parsed.grants == ("pipelineruns:create:",)
    assert may.where == [("create", "ns", "kascade.io")]
