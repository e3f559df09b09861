"""Who is asking, and may they: TokenReview and SubjectAccessReview for the web UI.

In a cluster the UI acts as each user: their bearer token is reviewed by the
API server (TokenReview), each read of the shared cache is allowed only if
RBAC lets that user list it (SubjectAccessReview), and actions are sent with
the user's own token, so the server's account needs no write rights at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kubernetes import client

from kascade.kube.watching import REQUESTS


@dataclass(frozen=True)
class UserInfo:
    name: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: dict[str, list[str]] = field(default_factory=dict)


def review_token(kube: Any, token: str) -> UserInfo | None:
    """The user a bearer token belongs to, or None if the API server rejects it."""
    REQUESTS["create tokenreviews"] += 1
    api = client.AuthenticationV1Api(kube.api)
    review = api.create_token_review(
        client.V1TokenReview(spec=client.V1TokenReviewSpec(token=token))
    )
    status = review.status
    if status is None or not status.authenticated or status.user is None:
        return None
    user = status.user
    return UserInfo(
        name=user.username or "",
        uid=user.uid or "",
        groups=tuple(user.groups or ()),
        extra={k: list(v) for k, v in (user.extra or {}).items()},
    )


def can(
    kube: Any,
    user: UserInfo,
    verb: str,
    resource: str,
    namespace: str | None,
    *,
    group: str = "kascade.io",
    subresource: str | None = None,
) -> tuple[bool, str]:
    """(allowed, the API server's reason) for ``user`` doing ``verb`` on ``resource``."""
    REQUESTS["create subjectaccessreviews"] += 1
    api = client.AuthorizationV1Api(kube.api)
    attrs = client.V1ResourceAttributes(
        verb=verb,
        group=group,
        resource=resource,
        namespace=namespace or None,
        subresource=subresource,
    )
    review = api.create_subject_access_review(
        client.V1SubjectAccessReview(
            spec=client.V1SubjectAccessReviewSpec(
                user=user.name,
                uid=user.uid or None,
                groups=list(user.groups) or None,
                extra=user.extra or None,
                resource_attributes=attrs,
            )
        )
    )
    status = review.status
    return bool(status and status.allowed), str((status and status.reason) or "")


def kube_for_token(token: str) -> Any:
    """A ``Kube`` that calls the API server as the token's owner (same host and CA as ours)."""
    from kascade.kube.client import Kube

    base = client.Configuration.get_default_copy()
    conf = client.Configuration(host=base.host)
    conf.ssl_ca_cert = base.ssl_ca_cert
    conf.verify_ssl = base.verify_ssl
    conf.api_key = {"authorization": token}
    conf.api_key_prefix = {"authorization": "Bearer"}
    from kascade.kube.watching import count_requests

    return Kube(count_requests(client.ApiClient(conf)))


def current_user_name() -> str:
    """The kubeconfig identity's name (for the UI's header), best effort."""
    from kubernetes import config

    try:
        _, active = config.list_kube_config_contexts()
    except Exception:
        return "in-cluster"
    ctx = (active or {}).get("context") or {}
    return str(ctx.get("user") or (active or {}).get("name") or "kubeconfig")
