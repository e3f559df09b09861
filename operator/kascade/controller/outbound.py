"""HTTP requests the operator sends on a pipeline author's behalf (notification webhooks).

The operator's pod sits inside the cluster, next to the API server, the
Services of every namespace and the cloud's metadata endpoint. A webhook URL is
chosen by whoever writes the Pipeline, so without limits it is a blind SSRF
from the operator's network position. Here, by default:

* only ``http``/``https`` URLs, to hosts whose every address is public
  (``ipaddress.is_global``: no loopback, private, link-local such as
  169.254.169.254, shared, reserved or multicast ranges), so the API server
  and the cluster's Services are out of reach;
* when an allow-list is set (chart value ``notifications.allowedHosts``), only
  those hosts (``hooks.slack.com``, ``*.example.com``, ``host:port``); a host on
  the list may resolve to any address (an admin listed it);
* the connection goes to the address that was checked (no second DNS lookup
  that a rebinding server could answer differently), TLS still verified
  against the host name;
* redirects are followed only to the same scheme, host and port (at most 3).
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import os
import socket
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

ALLOWED_HOSTS_ENV = "KASCADE_NOTIFY_ALLOWED_HOSTS"
ALLOW_PRIVATE_ENV = "KASCADE_NOTIFY_ALLOW_PRIVATE_NETWORKS"
MAX_REDIRECTS = 3
REDIRECTS = frozenset({301, 302, 303, 307, 308})


class Refused(Exception):
    """The request was not sent: the policy forbids it (the message says which rule)."""


@dataclass(frozen=True)
class Policy:
    allowed_hosts: tuple[str, ...] = ()
    allow_private: bool = False

    def listed(self, host: str, port: int) -> bool:
        host = host.lower().rstrip(".")
        for pattern in self.allowed_hosts:
            name, _, want_port = pattern.lower().partition(":")
            if want_port and int(want_port) != port:
                continue
            if name.startswith("*."):
                if host.endswith(name[1:]) and host != name[2:]:
                    return True
            elif host == name:
                return True
        return False

    def addresses(self, host: str, port: int) -> list[str]:
        """The addresses the request may go to; raises Refused when the policy says no."""
        listed = self.listed(host, port)
        if self.allowed_hosts and not listed:
            raise Refused(f"host {host!r} is not in the notification allow-list")
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise Refused(f"host {host!r} does not resolve: {exc}") from None
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        if listed or self.allow_private:
            return addresses
        for address in addresses:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
            if not ip.is_global or ip.is_multicast:
                raise Refused(
                    f"host {host!r} resolves to {address}, a non-public address (the cluster, "
                    "loopback or cloud metadata); list it in notifications.allowedHosts to allow it"
                )
        return addresses


def policy_from_env() -> Policy:
    hosts = tuple(h.strip() for h in os.environ.get(ALLOWED_HOSTS_ENV, "").split(",") if h.strip())
    private = os.environ.get(ALLOW_PRIVATE_ENV, "").lower() in ("1", "true", "yes")
    return Policy(allowed_hosts=hosts, allow_private=private)


class _PinnedHTTP(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        self.tls = ssl.create_default_context()
        super().__init__(host, port, timeout=timeout, context=self.tls)
        self.address = address

    def connect(self) -> None:
        raw = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self.tls.wrap_socket(raw, server_hostname=self.host)


def post_json(url: str, payload: Any, policy: Policy, timeout: float = 10.0) -> int:
    """POST ``payload`` as JSON; the final HTTP status. Raises Refused or OSError."""
    data = json.dumps(payload).encode()
    origin: tuple[str, str, int] | None = None
    for _ in range(MAX_REDIRECTS + 1):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise Refused("only http:// and https:// URLs with a host are allowed")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        here = (parts.scheme, parts.hostname.lower(), port)
        if origin is not None and here != origin:
            raise Refused(f"redirect to another host ({parts.hostname}) refused")
        origin = here
        address = policy.addresses(parts.hostname, port)[0]
        kind = _PinnedHTTPS if parts.scheme == "https" else _PinnedHTTP
        conn = kind(parts.hostname, port, address, timeout)
        try:
            target = parts.path or "/"
            if parts.query:
                target += "?" + parts.query
            conn.request("POST", target, body=data, headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read(64 * 1024)
            location = response.getheader("Location")
        finally:
            conn.close()
        if response.status not in REDIRECTS or not location:
            return int(response.status)
        url = urljoin(url, location)
    raise Refused(f"more than {MAX_REDIRECTS} redirects")
