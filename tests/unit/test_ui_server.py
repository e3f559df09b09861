"""The UI server's endpoints, on aiohttp's test client with an in-memory feed.

The feed pushes watch events into the real ``Store`` (what the shared watches
do on a cluster); the authority is a small RBAC table (what SubjectAccessReview
answers); actions run the real ``kascade.actions`` against an in-memory kube
that records what would be written. The e2e tier does the same on the real
cluster with a browser (tests/e2e/test_ui_browser.py).
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from kascade.ui import auth as ui_auth
from kascade.ui.server import create_app
from kascade.ui.store import Store

SPEC = {
    "schedule": "@daily",
    "tags": ["demo"],
    "params": {"count": {"type": "integer", "default": 1, "maximum": 5}},
    "defaults": {"image": "busybox:1.36"},
    "tasks": [
        {"name": "start", "command": ["true"]},
        {"name": "end", "command": ["true"], "dependsOn": ["etl"]},
    ],
    "groups": [
        {
            "name": "etl",
            "dependsOn": ["start"],
            "tasks": [
                {"name": "extract", "command": ["true"]},
                {
                    "name": "load",
                    "command": ["true"],
                    "dependsOn": ["extract"],
                    "expand": {"items": [1, 2]},
                },
            ],
        }
    ],
}


def pipeline(ns: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": "kascade.io/v1alpha1",
        "kind": "Pipeline",
        "metadata": {
            "namespace": ns,
            "name": name,
            "uid": f"uid-{name}",
            "managedFields": [{"manager": "kubectl"}],
        },
        "spec": copy.deepcopy(SPEC),
        "status": {"nextRun": "2030-01-02T00:00:00Z"},
    }


def run(ns: str, name: str, day: int, tasks: dict[str, str], phase: str) -> dict[str, Any]:
    from kascade.controller.snapshots import spec_hash

    return {
        "metadata": {"namespace": ns, "name": name, "creationTimestamp": f"2030-01-{day:02d}"},
        "spec": {
            "pipelineRef": {"name": "etl"},
            "pipelineSpec": SPEC,
            "specHash": spec_hash(SPEC),
            "logicalDate": f"2030-01-{day:02d}T00:00:00+00:00",
            "trigger": {"kind": "scheduled"},
        },
        "status": {"phase": phase, "tasks": tasks, "startTime": f"2030-01-{day:02d}T00:00:01Z"},
    }


def taskrun(ns: str, run_name: str, key: str, state: str) -> dict[str, Any]:
    return {
        "metadata": {"namespace": ns, "name": f"{run_name}-{key}"},
        "spec": {"pipelineRunRef": {"name": run_name}, "taskName": key},
        "status": {
            "state": state,
            "attempts": [{"number": 1, "podName": f"{run_name}-{key}-a1", "startTime": "t"}],
            "outputs": {"rows": 3},
        },
    }


def sync(store: Store, resource: str, scope: Any, items: list[dict[str, Any]]) -> None:
    """What a watcher delivers for a (re)list: pages of objects, then the keys listed."""
    store.apply(resource, scope, "PAGE", items)
    keys = [(i["metadata"].get("namespace", ""), i["metadata"]["name"]) for i in items]
    store.apply(resource, scope, "SYNC", keys)


class Feed:
    """The in-memory stand-in for the shared watches (ClusterFeed's interface)."""

    namespaces = None

    def __init__(self, store: Store) -> None:
        self.store = store
        self.opened: list[tuple[str, str]] = []

    async def start(self) -> None:
        for ns in ("team-a", "team-b"):
            sync(self.store, "pipelines", ns, [pipeline(ns, "etl")])
        done = {"start": "success", "etl.extract": "success", "etl.load[0]": "success"}
        sync(
            self.store,
            "pipelineruns",
            "team-a",
            [
                run(
                    "team-a",
                    "r1",
                    1,
                    {**done, "etl.load[1]": "failed", "end": "upstream_failed"},
                    "failed",
                ),
                run("team-a", "r2", 2, {"start": "running"}, "running"),
            ],
        )
        sync(self.store, "pools", "team-a", [])

    async def stop(self) -> None:
        return None

    def errors(self) -> list[str]:
        return []

    async def open_run(self, ns: str, name: str) -> None:
        self.opened.append((ns, name))
        sync(self.store, "taskruns", (ns, name), [taskrun(ns, name, "start", "success")])

    def keep_open(self, ns: str, name: str) -> None:
        return None


class RbacTable(ui_auth.Authority):
    """Users by token; what each may do, as SubjectAccessReview would answer."""

    mode = "token"

    def __init__(self, allowed: dict[str, set[tuple[str, str, str]]], kube: Any) -> None:
        super().__init__()
        self.allowed = allowed
        self.kube = kube

    async def user(self, request: web.Request) -> ui_auth.User:
        token = ui_auth.TokenAuthority.token_of(request)
        if token not in self.allowed:
            raise web.HTTPUnauthorized(text='{"error": "log in"}', content_type="application/json")
        return ui_auth.User(name=token, key=f"k-{token}", token=token)

    async def can(self, user: ui_auth.User, verb: str, resource: str, ns: str | None) -> bool:
        rules = self.allowed[user.name]
        return (verb, resource, ns or "") in rules or ("*", "*", ns or "") in rules

    def kube_for(self, user: ui_auth.User) -> Any:
        return self.kube


class MemoryKube:
    """Records writes; answers reads from the objects given (for the actions module)."""

    def __init__(self) -> None:
        self.created: list[dict[str, Any]] = []
        self.patched: list[tuple[str, str, dict[str, Any]]] = []

    def get(self, plural: str, ns: str, name: str) -> dict[str, Any] | None:
        return pipeline(ns, name) if plural == "pipelines" and name == "etl" else None

    def create(self, plural: str, ns: str, body: dict[str, Any]) -> dict[str, Any]:
        self.created.append(body)
        return body

    def patch(self, plural: str, ns: str, name: str, body: dict[str, Any]) -> None:
        self.patched.append((plural, name, body))


ALICE = {("*", "*", "team-a"), ("*", "*", "team-b")}
BOB = {
    ("list", "pipelines", "team-a"),
    ("list", "pipelineruns", "team-a"),
    ("get", "pipelines", "team-a"),
}


def serve(
    test: Callable[[TestClient, MemoryKube, Feed], Awaitable[None]],
    *,
    read_only: bool = False,
) -> None:
    async def main() -> None:
        store = Store()
        feed = Feed(store)
        kube = MemoryKube()
        authority = RbacTable({"alice": ALICE, "bob": BOB}, kube)
        authority.read_only = read_only
        app = create_app(authority, store, feed, kube=None, log_source=lambda k: None)
        async with TestClient(TestServer(app)) as client:
            await asyncio.sleep(0)
            await test(client, kube, feed)

    asyncio.run(main())


def as_user(name: str, csrf: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {name}"}
    if csrf:
        headers["X-CSRF-Token"] = csrf
    return headers


async def get_json(client: TestClient, path: str, user: str = "alice") -> tuple[int, Any]:
    response = await client.get(path, headers=as_user(user))
    return response.status, await response.json()


def test_no_token_is_401_and_session_gives_csrf() -> None:
    async def test(client: TestClient, kube: MemoryKube, feed: Feed) -> None:
        response = await client.get("/api/pipelines")
        assert response.status == 401
        status, session = await get_json(client, "/api/session")
        assert status == 200 and session["user"] == "alice" and len(session["csrf"]) == 64
        page = await client.get("/")
        assert page.status == 200
        assert "script-src 'self'" in page.headers["Content-Security-Policy"]
        assert (await client.get("/static/app.js")).status == 200

    serve(test)


def test_pipelines_list_is_filtered_by_rbac() -> None:
    async def test(client: TestClient, kube: MemoryKube, feed: Feed) -> None:
        _, alice = await get_json(client, "/api/pipelines")
        assert [(p["namespace"], p["name"]) for p in alice["pipelines"]] == [
            ("team-a", "etl"),
            ("team-b", "etl"),
        ]
        row = alice["pipelines"][0]
        assert row["lastRuns"] == [
            {"name": "r2", "phase": "running"},
            {"name": "r1", "phase": "failed"},
        ]
        assert row["schedule"] == "@daily" and row["nextRun"] == "2030-01-02T00:00:00Z"
        _, bob = await get_json(client, "/api/pipelines", "bob")
        assert [p["namespace"] for p in bob["pipelines"]] == ["team-a"]
        status, _ = await get_json(client, "/api/pipelines/team-b/etl", "bob")
        assert status == 403

    serve(test)


def test_pipeline_page_has_grid_graph_schedule_params_and_clean_yaml() -> None:
    async def test(client: TestClient, kube: MemoryKube, feed: Feed) -> None:
        status, page = await get_json(client, "/api/pipelines/team-a/etl")
        assert status == 200
        grid = page["grid"]
        assert [r["name"] for r in grid["runs"]] == ["r1", "r2"]  # oldest left
        rows = {r["id"]: r for r in grid["rows"]}
        assert list(rows) == ["start", "etl", "etl.extract", "etl.load", "end"]
        assert rows["etl"]["kind"] == "group" and rows["etl"]["cells"] == "f "
        assert rows["etl.load"]["mapped"] and rows["etl.load"]["counts"][0] == {
            "success": 1,
            "failed": 1,
        }
        assert rows["etl.load"]["cells"][0] == "f" and rows["start"]["cells"] == "sr"
        assert {(e["from"], e["to"]) for e in page["graph"]["edges"]} >= {
            ("start", "etl.extract"),
            ("etl.load", "end"),
        }
        assert page["schedule"]["next"] and page["params"]["count"]["maximum"] == 5
        assert "managedFields" not in page["yaml"] and "name: etl" in page["yaml"]

    serve(test)


def test_run_and_task_pages_open_the_run_watch() -> None:
    async def test(client: TestClient, kube: MemoryKube, feed: Feed) -> None:
        status, page = await get_json(client, "/api/runs/team-a/r1")
        assert status == 200 and feed.opened == [("team-a", "r1")]
        states = {t["key"]: t["state"] for t in page["tasks"]}
        assert states["start"] == "success" and states["etl.load[1]"] == "failed"
        assert page["run"]["progress"] == "5/5" and page["graph"]["nodes"]
        status, task = await get_json(client, "/api/runs/team-a/r1/tasks/start")
        assert status == 200 and task["task"]["outputs"] == {"rows": 3}
        assert task["task"]["tries"][0]["pod"] == "r1-start-a1"
        status, missing = await get_json(client, "/api/runs/team-a/r1/tasks/nope")
        assert status == 404 and "nope" in missing["error"]
        status, _ = await get_json(client, "/api/runs/team-a/r1", "bob")
        assert status == 403  # bob may list runs but not get them and their TaskRuns

    serve(test)


def test_actions_need_csrf_and_same_origin_and_call_the_shared_code() -> None:
    async def test(client: TestClient, kube: MemoryKube, feed: Feed) -> None:
        _, session = await get_json(client, "/api/session")
        body = {"namespace": "team-a", "pipeline": "etl", "params": {"count": "3"}}
        no_csrf = await client.post("/api/actions/trigger", json=body, headers=as_user("alice"))
        assert no_csrf.status == 403 and "CSRF" in (await no_csrf.json())["error"]
        headers = as_user("alice", session["csrf"])
        cross = await client.post(
            "/api/actions/trigger", json=body, headers={**headers, "Origin": "https://evil.example"}
        )
        assert cross.status == 403 and "cross-origin" in (await cross.json())["error"]
        ok = await client.post("/api/actions/trigger", json=body, headers=headers)
        assert ok.status == 200, await ok.text()
        made = kube.created[-1]
        assert made["kind"] == "PipelineRun" and made["spec"]["params"] == {"count": 3}
        assert made["spec"]["trigger"] == {"kind": "manual", "by": "alice"}
        bad = await client.post(
            "/api/actions/trigger",
            json={**body, "params": {"count": "9"}},
            headers=headers,
        )
        assert bad.status == 400 and "must be <= 5" in (await bad.json())["error"]
        paused = await client.post(
            "/api/actions/pause", json={"namespace": "team-a", "pipeline": "etl"}, headers=headers
        )
        assert paused.status == 200
        assert kube.patched[-1] == ("pipelines", "etl", {"spec": {"suspend": True}})

    serve(test)


def test_a_user_without_create_gets_a_clear_refusal() -> None:
    async def test(client: TestClient, kube: MemoryKube, feed: Feed) -> None:
        _, session = await get_json(client, "/api/session", "bob")
        response = await client.post(
            "/api/actions/trigger",
            json={"namespace": "team-a", "pipeline": "etl"},
            headers=as_user("bob", session["csrf"]),
        )
        assert response.status == 403
        message = (await response.json())["error"]
        assert 'User "bob" cannot create pipelineruns in the namespace "team-a"' in message
        assert kube.created == []
        # a CSRF token is per user: alice's does not work for bob
        _, alice = await get_json(client, "/api/session")
        stolen = await client.post(
            "/api/actions/trigger",
            json={"namespace": "team-a", "pipeline": "etl"},
            headers=as_user("bob", alice["csrf"]),
        )
        assert stolen.status == 403 and "CSRF" in (await stolen.json())["error"]

    serve(test)


def test_read_only_mode_refuses_actions() -> None:
    async def test(client: TestClient, kube: MemoryKube, feed: Feed) -> None:
        _, session = await get_json(client, "/api/session")
        assert session["readOnly"] is True
        response = await client.post(
            "/api/actions/trigger",
            json={"namespace": "team-a", "pipeline": "etl"},
            headers=as_user("alice", session["csrf"]),
        )
        assert response.status == 403 and "read-only" in (await response.json())["error"]
        assert kube.created == []

    serve(test, read_only=True)


def test_changes_reach_the_event_stream_filtered_by_rbac() -> None:
    async def test(client: TestClient, kube: MemoryKube, feed: Feed) -> None:
        streams = {}
        for user in ("alice", "bob"):
            streams[user] = await client.get("/api/stream", headers=as_user(user))
            assert (await streams[user].content.readuntil(b"\n\n")).startswith(b"retry:")
        feed.store.apply(
            "pipelineruns",
            "team-b",
            "MODIFIED",
            run("team-b", "rb", 3, {"start": "running"}, "running"),
        )
        event = await asyncio.wait_for(streams["alice"].content.readuntil(b"\n\n"), 5)
        topics = json.loads(event.decode().split("data: ", 1)[1])["topics"]
        assert "run:team-b/rb" in topics and "pipelines" in topics
        event = await asyncio.wait_for(streams["bob"].content.readuntil(b"\n\n"), 5)
        topics = json.loads(event.decode().split("data: ", 1)[1])["topics"]
        assert "run:team-b/rb" not in topics and "pipelines" in topics  # bob can't see team-b
        for s in streams.values():
            s.close()

    serve(test)


@pytest.mark.parametrize(
    ("host", "ok"),
    [
        ("localhost:8080", True),
        ("127.0.0.1:8080", True),
        ("[::1]:8080", True),
        ("evil.example", False),
    ],
)
def test_kubeconfig_mode_accepts_only_loopback_hosts(host: str, ok: bool) -> None:
    authority = ui_auth.KubeconfigAuthority(None, "me")

    class Request:
        pass

    request = Request()
    request.host = host  # type: ignore[attr-defined]
    if ok:
        authority.check_host(request)  # type: ignore[arg-type]
    else:
        with pytest.raises(web.HTTPForbidden):
            authority.check_host(request)  # type: ignore[arg-type]


class Reviewed(ui_auth.TokenAuthority):
    """The real token authority, with TokenReview answered from a table."""

    async def _review(self, token: str) -> Any:
        from kascade.kube.reviews import UserInfo

        self.reviews = getattr(self, "reviews", 0) + 1
        return UserInfo(username="carol", groups=("devs",)) if token == "carol-token" else None

    async def can(self, user: ui_auth.User, verb: str, resource: str, ns: str | None) -> bool:
        return True


def test_login_sets_an_http_only_cookie_and_reviews_are_cached() -> None:
    async def main() -> None:
        store = Store()
        authority = Reviewed(None)
        app = create_app(authority, store, Feed(store), kube=None, log_source=lambda k: None)
        async with TestClient(TestServer(app)) as client:
            bad = await client.post("/api/login", json={"token": "nope"})
            assert bad.status == 401 and "rejected" in (await bad.json())["error"]
            ok = await client.post("/api/login", json={"token": "carol-token"})
            assert ok.status == 200 and (await ok.json())["user"] == "carol"
            cookie = ok.headers["Set-Cookie"]
            assert "kascade_token=carol-token" in cookie
            assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
            for _ in range(3):
                session = await client.get("/api/session")  # the cookie is sent back
                assert (await session.json())["user"] == "carol"
            assert authority.reviews == 2  # nope, carol: then cached
            out = await client.post("/api/logout")
            assert "kascade_token=;" in out.headers["Set-Cookie"].replace('=""', "=")
            assert (await client.get("/api/session")).status == 401

    asyncio.run(main())
