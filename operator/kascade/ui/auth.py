"""Who a browser is and what it may do: three modes, one interface for the server.

- ``KubeconfigAuthority`` (``kascade ui`` on a laptop): the kubeconfig's identity
  is the only user, as with ``kubectl proxy``; the API server decides on each
  action, and the server listens on loopback and accepts only loopback Host
  headers (no DNS rebinding).
- ``TokenAuthority`` (in a cluster): every request carries the user's bearer
  token (``Authorization`` header from an auth proxy, or the login form's
  HttpOnly cookie). It is checked with TokenReview; reads of the shared cache
  are filtered with SubjectAccessReview; actions and logs are sent with the
  user's own token, so RBAC decides and the server's account stays read-only.
- ``HistoryAuthority``: the local runner's history, read-only.

Every action also needs the CSRF token the page got from ``/api/session``
(an HMAC of the user's identity with a per-process secret) and, if the browser
sends one, a same-origin ``Origin`` header.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

TOKEN_COOKIE = "kascade_token"
CSRF_HEADER = "X-CSRF-Token"
REVIEW_TTL_SECONDS = 60.0
ACCESS_TTL_SECONDS = 30.0
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]", "::1"})


@dataclass(frozen=True)
class User:
    name: str
    key: str
    """A stable hash of the credential: what CSRF tokens and caches are keyed on."""
    token: str | None = None
    info: Any = None
    """kube.reviews.UserInfo for token users."""
    groups: tuple[str, ...] = field(default=())


class Authority:
    """The interface the server uses; subclasses decide how."""

    mode = "base"

    def __init__(self, read_only: bool = False) -> None:
        self.read_only = read_only
        self.secret = os.urandom(32)

    async def user(self, request: web.Request) -> User:
        raise NotImplementedError

    async def can(self, user: User, verb: str, resource: str, namespace: str | None) -> bool:
        return True

    async def why_not(self, user: User, verb: str, resource: str, namespace: str | None) -> str:
        """A refusal message naming the user, verb, resource and namespace ('' if allowed)."""
        if await self.can(user, verb, resource, namespace):
            return ""
        where = f' in the namespace "{namespace}"' if namespace else ""
        return f'User "{user.name}" cannot {verb} {resource}{where} (RBAC)'

    def kube_for(self, user: User) -> Any:
        """The API client to act and read logs as ``user``; None when there is no cluster."""
        return None

    def check_host(self, request: web.Request) -> None:
        """Refuse Host headers that are not ours (a page on another site resolving to us)."""

    # -- CSRF ---------------------------------------------------------------------------------
    def csrf_token(self, user: User) -> str:
        return hmac.new(self.secret, user.key.encode(), hashlib.sha256).hexdigest()

    def check_csrf(self, request: web.Request, user: User) -> None:
        given = request.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(given, self.csrf_token(user)):
            raise web.HTTPForbidden(
                text='{"error": "missing or wrong CSRF token: reload the page"}',
                content_type="application/json",
            )
        origin = request.headers.get("Origin")
        if origin and origin != "null":
            expected = f"{request.scheme}://{request.host}"
            forwarded = request.headers.get("X-Forwarded-Host")
            allowed = {expected}
            if forwarded:
                proto = request.headers.get("X-Forwarded-Proto", request.scheme)
                allowed.add(f"{proto}://{forwarded}")
            if origin not in allowed:
                raise web.HTTPForbidden(
                    text='{"error": "cross-origin request refused"}',
                    content_type="application/json",
                )


def hostname(host: str) -> str:
    """``localhost:8080`` → ``localhost``; ``[::1]:8080`` → ``[::1]``."""
    if host.startswith("["):
        return host[: host.index("]") + 1] if "]" in host else host
    return host.rsplit(":", 1)[0]


class KubeconfigAuthority(Authority):
    mode = "kubeconfig"

    def __init__(
        self, kube: Any, name: str, read_only: bool = False, hosts: frozenset[str] = frozenset()
    ) -> None:
        super().__init__(read_only)
        self.kube = kube
        self.me = User(name=name, key=f"kubeconfig:{name}")
        self.hosts = LOOPBACK_HOSTS | hosts

    async def user(self, request: web.Request) -> User:
        return self.me

    def kube_for(self, user: User) -> Any:
        return self.kube

    def check_host(self, request: web.Request) -> None:
        if hostname(request.host or "") not in self.hosts:
            raise web.HTTPForbidden(text=f"Host {request.host!r} not allowed (--allow-host)")


class HistoryAuthority(KubeconfigAuthority):
    """Local history: one local user, nothing to act on."""

    mode = "history"

    def __init__(self, hosts: frozenset[str] = frozenset()) -> None:
        super().__init__(None, os.environ.get("USER") or "local", True, hosts)


class TokenAuthority(Authority):
    """In-cluster: each request as its user (TokenReview + SubjectAccessReview)."""

    mode = "token"

    def __init__(self, kube: Any, read_only: bool = False) -> None:
        super().__init__(read_only)
        self.kube = kube
        self._reviews: dict[str, tuple[float, Any]] = {}
        self._access: dict[tuple[str, str, str, str], tuple[float, bool]] = {}
        self._clients: dict[str, Any] = {}

    @staticmethod
    def token_of(request: web.Request) -> str | None:
        header = request.headers.get("Authorization", "")
        if header.lower().startswith("bearer "):
            return header[7:].strip() or None
        return request.cookies.get(TOKEN_COOKIE) or None

    async def user(self, request: web.Request) -> User:
        token = self.token_of(request)
        if not token:
            raise web.HTTPUnauthorized(
                text='{"error": "log in: give a bearer token"}', content_type="application/json"
            )
        return await self.user_for_token(token)

    async def user_for_token(self, token: str) -> User:
        """The token's user (TokenReview, cached a minute); 401 if the API server rejects it."""
        key = hashlib.sha256(token.encode()).hexdigest()
        now = time.monotonic()
        cached = self._reviews.get(key)
        if cached is None or now - cached[0] > REVIEW_TTL_SECONDS:
            if len(self._reviews) > 4096:  # bounded: tokens rotate
                self._reviews.clear()
            cached = (now, await self._review(token))
            self._reviews[key] = cached
        info = cached[1]
        if info is None:
            raise web.HTTPUnauthorized(
                text='{"error": "the API server rejected this token"}',
                content_type="application/json",
            )
        return User(name=info.username, key=key, token=token, info=info, groups=info.groups)

    async def _review(self, token: str) -> Any:
        from kascade.kube.reviews import review_token

        return await asyncio.to_thread(review_token, self.kube, token)

    async def can(self, user: User, verb: str, resource: str, namespace: str | None) -> bool:
        from kascade.kube.reviews import can

        group = "" if resource in ("pods", "pods/log", "events") else "kascade.io"
        resource, _, sub = resource.partition("/")
        cache_key = (user.key, verb, f"{resource}/{sub}", namespace or "")
        now = time.monotonic()
        hit = self._access.get(cache_key)
        if hit is not None and now - hit[0] < ACCESS_TTL_SECONDS:
            return hit[1]
        allowed: bool = await asyncio.to_thread(
            can,
            self.kube,
            user.info,
            verb,
            resource,
            namespace,
            group=group,
            subresource=sub or None,
        )
        if len(self._access) > 20000:  # bounded: users and namespaces come and go
            self._access.clear()
        self._access[cache_key] = (now, allowed)
        return allowed

    def kube_for(self, user: User) -> Any:
        from kascade.kube.reviews import kube_for_token

        assert user.token is not None
        client = self._clients.get(user.key)
        if client is None:
            if len(self._clients) > 256:  # bounded: tokens rotate
                self._clients.clear()
            client = self._clients[user.key] = kube_for_token(user.token)
        return client
