"""``kascade ui``: the web server (aiohttp, already a dependency of kopf).

Pages are static ES modules (``ui/static``, served from the package: nothing
is fetched from the internet); data comes from the JSON endpoints in
``pages.py``, live changes over one server-sent-events stream per page, logs
as a streamed text response, and actions as POSTs that call the same
functions as the CLI (``kascade.actions``) with the user's own credentials.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from pathlib import Path
from typing import Any

from aiohttp import web

from kascade.ui import keys, pages
from kascade.ui.auth import TOKEN_COOKIE, Authority

log = logging.getLogger("kascade.ui")

STATIC = Path(__file__).parent / "static"
KEEPALIVE_SECONDS = 20.0
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'"
)


@web.middleware
async def guard(request: web.Request, handler: Any) -> web.StreamResponse:
    """Host check, the user's identity, security headers; JSON errors for the API."""
    auth: Authority = request.app[keys.AUTH]
    try:
        auth.check_host(request)
        if request.path.startswith("/api/") and request.path not in ("/api/login",):
            request[keys.USER] = await auth.user(request)
        response: web.StreamResponse = await handler(request)
    except web.HTTPException as exc:
        if request.path.startswith("/api/") and exc.content_type != "application/json":
            exc = type(exc)(
                text=json.dumps({"error": exc.text or exc.reason}), content_type="application/json"
            )  # type: ignore[call-arg]
        response = exc
    if not response.prepared:
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        if request.path.startswith("/api/"):
            response.headers.setdefault("Cache-Control", "no-store")
    if isinstance(response, web.HTTPException):
        raise response
    return response


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html")


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def stats(request: web.Request) -> web.Response:
    """What this server costs the API server: requests made so far (by kind), open streams."""
    from kascade.kube.watching import REQUESTS

    store = request.app[keys.STORE]
    return web.json_response(
        {
            "apiRequests": dict(REQUESTS),
            "streams": len(request.app[keys.STREAMS]),
            "pipelines": len(store.pipelines),
            "runs": len(store.runs),
            "watchedRuns": len(store.taskruns),
        }
    )


async def session(request: web.Request) -> web.Response:
    auth: Authority = request.app[keys.AUTH]
    user = request[keys.USER]
    feed = request.app[keys.FEED]
    return web.json_response(
        {
            "user": user.name,
            "mode": auth.mode,
            "readOnly": auth.read_only,
            "csrf": auth.csrf_token(user),
            "namespaces": feed.namespaces,
            "errors": feed.errors(),
        }
    )


async def login(request: web.Request) -> web.Response:
    """Token mode: keep a pasted bearer token in an HttpOnly, same-site cookie."""
    from kascade.ui.auth import TokenAuthority

    auth = request.app[keys.AUTH]
    if not isinstance(auth, TokenAuthority):
        return pages.json_error(400, "this server does not use token logins")
    try:
        token = str((await request.json()).get("token") or "").strip()
    except ValueError:
        return pages.json_error(400, "expected JSON {token}")
    user = await auth.user_for_token(token)
    response = web.json_response({"user": user.name})
    response.set_cookie(
        TOKEN_COOKIE, token, httponly=True, samesite="Strict", secure=request.secure, path="/"
    )
    return response


async def logout(request: web.Request) -> web.Response:
    response = web.json_response({"ok": True})
    response.del_cookie(TOKEN_COOKIE, path="/")
    return response


# -- live updates ------------------------------------------------------------------------------
async def stream(request: web.Request) -> web.StreamResponse:
    """Server-sent events: the topics that changed; the page refetches what it shows."""
    store, feed, auth, user = (
        request.app[keys.STORE],
        request.app[keys.FEED],
        request.app[keys.AUTH],
        request[keys.USER],
    )
    run = request.query.get("run", "")
    run_ns, _, run_name = run.partition("/")
    queue: asyncio.Queue[set[str]] = asyncio.Queue()
    unsubscribe = store.subscribe(queue.put_nowait)
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"}
    )
    await response.prepare(request)
    request.app[keys.STREAMS].add(response)
    try:
        await response.write(b"retry: 2000\nevent: hello\ndata: {}\n\n")
        while True:
            try:
                topics = await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
            except TimeoutError:
                await response.write(b": keepalive\n\n")
                if run_name:
                    feed.keep_open(run_ns, run_name)
                continue
            visible = []
            for topic in topics:
                ns = topic.split(":", 1)[1].split("/", 1)[0] if ":" in topic else None
                if ns is None or await auth.can(user, "list", "pipelineruns", ns):
                    visible.append(topic)
            if visible:
                data = json.dumps({"topics": sorted(visible)})
                await response.write(f"event: change\ndata: {data}\n\n".encode())
            if run_name:
                feed.keep_open(run_ns, run_name)
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        unsubscribe()
        request.app[keys.STREAMS].discard(response)
    return response


# -- logs -----------------------------------------------------------------------------------------
async def logs(request: web.Request) -> web.StreamResponse:
    """One attempt's log as text; ``follow=1`` streams it while the attempt runs."""
    from kascade.ui.logs import follow_task
    from kascade.ui.readers import NotFound

    ns, run, key = pages.ns_of(request), request.match_info["run"], request.match_info["key"]
    try:
        attempt = int(request.match_info["attempt"])
    except ValueError:
        return pages.json_error(400, "attempt: expected a number")
    follow = request.query.get("follow") == "1"
    auth, user = request.app[keys.AUTH], request[keys.USER]
    if ns:
        await pages.require(request, "get", "pods/log", ns)
    source = request.app[keys.LOG_SOURCE](auth.kube_for(user))
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes | Exception | None] = asyncio.Queue(maxsize=64)
    stop = False

    def pump() -> None:
        try:
            for chunk in follow_task(source, ns, run, key, attempt=attempt, follow=follow):
                if stop:
                    return
                asyncio.run_coroutine_threadsafe(queue.put(chunk), loop).result()
        except Exception as exc:
            asyncio.run_coroutine_threadsafe(queue.put(exc), loop).result()
            return
        asyncio.run_coroutine_threadsafe(queue.put(None), loop).result()

    worker = loop.run_in_executor(request.app[keys.LOG_THREADS], pump)
    first = await queue.get()
    if isinstance(first, NotFound):
        return pages.json_error(404, str(first))
    if isinstance(first, Exception):
        return pages.json_error(502, f"{type(first).__name__}: {first}")
    response = web.StreamResponse(
        headers={"Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store"}
    )
    await response.prepare(request)
    try:
        item: bytes | Exception | None = first
        while item is not None:
            if isinstance(item, Exception):
                await response.write(f"\n[log stream ended: {item}]\n".encode())
                break
            await response.write(item)
            item = await queue.get()
        await response.write_eof()
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        stop = True
        while not queue.empty():
            queue.get_nowait()
        with contextlib.suppress(Exception):
            worker.cancel()
    return response


def create_app(
    auth: Authority, store: Any, feed: Any, *, kube: Any, log_source: Any
) -> web.Application:
    """``kube``: the server's own (read-only) client, None for local history.
    ``log_source(user_kube)``: a ``logs.LogSource`` for one user."""
    from concurrent.futures import ThreadPoolExecutor

    from kascade.ui import commands

    app = web.Application(middlewares=[guard])
    app[keys.AUTH], app[keys.STORE], app[keys.FEED], app[keys.KUBE] = auth, store, feed, kube
    app[keys.LOG_SOURCE] = log_source
    app[keys.LOG_THREADS] = ThreadPoolExecutor(32, thread_name_prefix="ui-logs")
    app[keys.STREAMS] = set()
    app.router.add_get("/", index)
    app.router.add_get("/healthz", healthz)
    app.router.add_static("/static/", STATIC, append_version=False)
    app.router.add_get("/api/session", session)
    app.router.add_get("/api/stats", stats)
    app.router.add_post("/api/login", login)
    app.router.add_post("/api/logout", logout)
    app.router.add_get("/api/stream", stream)
    app.router.add_get("/api/pipelines", pages.pipelines)
    app.router.add_get("/api/pipelines/{ns}/{name}", pages.pipeline)
    app.router.add_get("/api/runs/{ns}/{name}", pages.run_view)
    app.router.add_get("/api/runs/{ns}/{run}/tasks/{key}", pages.task_view)
    app.router.add_get("/api/logs/{ns}/{run}/{key}/{attempt}", logs)
    app.router.add_get("/api/pools", pages.pools)
    app.router.add_get("/api/sla", pages.sla)
    app.router.add_post("/api/actions/{action}", commands.act)

    async def started(app: web.Application) -> None:
        await feed.start()

    async def stopping(app: web.Application) -> None:
        streams: set[web.StreamResponse] = app[keys.STREAMS]
        for response in list(streams):
            with contextlib.suppress(Exception):
                await response.write_eof()
        await feed.stop()
        app[keys.LOG_THREADS].shutdown(wait=False, cancel_futures=True)

    app.on_startup.append(started)
    app.on_shutdown.append(stopping)
    return app
