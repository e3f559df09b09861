"""What the admission webhook asks the API server: may this user do X, and would this pod pass.

* :meth:`Access.allowed` is a SubjectAccessReview for the requesting user (the
  identity the API server put in the admission request, so it cannot be
  forged by the user);
* :meth:`Access.dry_run_pod` creates a pod with ``dryRun=All``: the API
  server validates it and runs every admission plugin (Pod Security of the
  namespace, ServiceAccount existence, LimitRanges), and stores nothing;
* :meth:`Access.whoami` is the operator's own user name (a SelfSubjectReview),
  so that it never approves a spec on its own authority.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

import pydantic
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from kascade.api.base import GROUP, VERSION

log = logging.getLogger("kascade.kube")

#: Reasons a dry run can fail that say nothing about the pod itself.
_TRANSIENT = ("exceeded quota", "must specify limits", "must specify requests")


@dataclass(frozen=True)
class UserInfo:
    """The requesting user, as the API server authenticated it."""

    username: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def of(cls, raw: Any) -> UserInfo:
        data = dict(raw or {})
        return cls(
            username=str(data.get("username") or ""),
            uid=str(data.get("uid") or ""),
            groups=tuple(str(g) for g in data.get("groups") or ()),
            extra={str(k): [str(x) for x in v] for k, v in dict(data.get("extra") or {}).items()},
        )


@dataclass(frozen=True)
class PodRejection:
    """Why the API server would refuse a pod: field errors, or one message."""

    message: str
    fields: tuple[tuple[str, str], ...] = ()
    """(field path in the pod, what is wrong with it)."""


class Access:
    def __init__(self, api_client: client.ApiClient | None = None) -> None:
        self.api = api_client or client.ApiClient()
        self.authz = client.AuthorizationV1Api(self.api)
        self.authn = client.AuthenticationV1Api(self.api)
        self.core = client.CoreV1Api(self.api)
        self._me: str | None = None

    def allowed(
        self,
        user: UserInfo,
        namespace: str,
        verb: str,
        resource: str,
        name: str | None = None,
        group: str = "",
        subresource: str | None = None,
    ) -> bool:
        attributes: dict[str, Any] = {
            "namespace": namespace,
            "verb": verb,
            "group": group,
            "resource": resource,
        }
        if name:
            attributes["name"] = name
        if subresource:
            attributes["subresource"] = subresource
        body = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {
                "user": user.username,
                "uid": user.uid or None,
                "groups": list(user.groups),
                "extra": user.extra or None,
                "resourceAttributes": attributes,
            },
        }
        review = self.authz.create_subject_access_review(body)
        return bool(review.status and review.status.allowed)

    def whoami(self) -> str:
        if self._me is None:
            review = self.authn.create_self_subject_review(
                {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
            )
            self._me = str(review.status.user_info.username)
        return self._me

    def dry_run_pod(self, namespace: str, pod: dict[str, Any]) -> PodRejection | None:
        try:
            self.core.create_namespaced_pod(namespace, pod, dry_run="All")
        except ApiException as exc:
            if exc.status not in (400, 403, 422):
                raise
            return _rejection(exc)
        except pydantic.ValidationError as exc:  # the client's own typed models refused it
            return PodRejection("the pod does not parse", _pydantic_fields(exc))
        return None

    def pipeline(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.kascade_object("pipelines", namespace, name)

    def task_template(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.kascade_object("tasktemplates", namespace, name)

    def kascade_object(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            obj = client.CustomObjectsApi(self.api).get_namespaced_custom_object(
                GROUP, VERSION, namespace, plural, name
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return dict(obj)


def _rejection(exc: ApiException) -> PodRejection | None:
    try:
        status = json.loads(exc.body or "{}")
    except ValueError:
        status = {}
    message = str(status.get("message") or exc.reason or exc.status)
    if any(marker in message for marker in _TRANSIENT):
        log.debug("Dry run of a pod refused for a reason outside the pod: %s", message)
        return None
    causes = ((status.get("details") or {}).get("causes")) or []
    fields = tuple(
        (str(c.get("field") or ""), str(c.get("message") or c.get("reason") or ""))
        for c in causes
        if c.get("field")
    )
    return PodRejection(message=message, fields=fields)


def _pydantic_fields(exc: pydantic.ValidationError) -> tuple[tuple[str, str], ...]:
    """``body.spec.containers.0.securityContext.runAsUser`` → ``spec.containers[0]....``."""
    out = []
    for error in exc.errors():
        loc = [str(part) for part in error.get("loc", ())]
        if "spec" in loc:
            loc = loc[loc.index("spec") :]
        path = ""
        for part in loc:
            path += f"[{part}]" if part.isdigit() else (f".{part}" if path else part)
        out.append((path, str(error.get("msg", "invalid"))))
    return tuple(out)
