"""Notification webhooks cannot reach the cluster, loopback or metadata addresses (real servers)."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from kascade.controller.outbound import Policy, Refused, post_json


@contextmanager
def server(redirect: str | None = None) -> Iterator[tuple[int, list[Any]]]:
    """A real HTTP server on loopback that records what it is sent (or redirects once)."""
    got: list[Any] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.append((self.path, json.loads(body)))
            if redirect and self.path == "/start":
                self.send_response(307)
                self.send_header("Location", redirect)
            else:
                self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd.server_address[1], got
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_loopback_is_refused_by_default_and_nothing_is_sent() -> None:
    with server() as (port, got):
        with pytest.raises(Refused, match="non-public address"):
            post_json(f"http://127.0.0.1:{port}/hook", {"text": "x"}, Policy())
        with pytest.raises(Refused, match="non-public address"):
            post_json(f"http://localhost:{port}/hook", {"text": "x"}, Policy())
    assert got == []


@pytest.mark.parametrize(
    "url",
    ["http://169.254.169.254/latest/meta-data", "http://10.96.0.1:443/api", "http://[::1]:80/"],
)
def test_metadata_and_cluster_ranges_are_refused(url: str) -> None:
    with pytest.raises(Refused, match="non-public"):
        post_json(url, {}, Policy())


def test_other_schemes_are_refused() -> None:
    with pytest.raises(Refused, match="only http"):
        post_json("file:///etc/passwd", {}, Policy())


def test_private_networks_can_be_allowed() -> None:
    with server() as (port, got):
        assert post_json(f"http://127.0.0.1:{port}/h", {"text": "hi"}, Policy(allow_private=True))
    assert got == [("/h", {"text": "hi"})]


def test_the_allow_list_admits_only_its_hosts() -> None:
    with server() as (port, got):
        policy = Policy(allowed_hosts=(f"127.0.0.1:{port}",))
        assert post_json(f"http://127.0.0.1:{port}/h", {"n": 1}, policy) == 200
        with pytest.raises(Refused, match="allow-list"):
            post_json(f"http://localhost:{port}/h", {"n": 2}, policy)
        with pytest.raises(Refused, match="allow-list"):
            post_json("https://hooks.example.org/x", {"n": 3}, policy)
    assert got == [("/h", {"n": 1})]
    wildcard = Policy(allowed_hosts=("*.example.com",))
    assert wildcard.listed("hooks.example.com", 443)
    assert not wildcard.listed("example.com", 443)
    assert not wildcard.listed("evil-example.com", 443)


def test_redirects_stay_on_the_same_host() -> None:
    policy = Policy(allow_private=True)
    with (
        server() as (other, other_got),
        server(redirect=f"http://127.0.0.1:{other}/x") as (
            port,
            got,
        ),
        pytest.raises(Refused, match="redirect to another host"),
    ):
        post_json(f"http://127.0.0.1:{port}/start", {"t": 1}, policy)
    assert got == [("/start", {"t": 1})] and other_got == []
    with server(redirect="/final") as (port, got):
        assert post_json(f"http://127.0.0.1:{port}/start", {"t": 2}, policy) == 200
    assert [path for path, _ in got] == ["/start", "/final"]
