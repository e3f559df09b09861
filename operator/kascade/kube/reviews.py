"""Who is asking, and may they: TokenReview and SubjectAccessReview for the web UI.

In a cluster the UI acts as each user: their bearer token is reviewed by the
API server (TokenReview), each read of the shared cache is allowed only if
RBAC lets that user list it (SubjectAccessReview), and actions are sent with
the user's own token, so the server's account needs no write rights at all.
"""

from __future__ import annotations

from typing import Any

from kubernetes import client

from kascade.kube.access import UserInfo
from kascade.kube.watching import REQUESTS

__all__ = ["UserInfo", "can", "current_user_name", "kube_for_token", "review_token"]


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
        username=user.username or "",
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
) -> bool:
    """May ``user`` do ``verb`` on ``resource`` in ``namespace`` (a SubjectAccessReview)."""
    from kascade.kube.access import Access

    REQUESTS["create subjectaccessreviews"] += 1
    return Access(kube.api).allowed(
        user, namespace or "", verb, resource, group=group, subresource=subresource
    )


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
