"""List-then-watch loops on a thread each, feeding a callback (the UI server's cache).

One ``Watcher`` per kind and namespace scope, shared by every browser: an idle
UI costs one long-lived watch request per kind, whatever the number of pages
open. A watch that expires (410 Gone) is followed by a fresh list, delivered
as one ``SYNC`` so the cache drops objects deleted meanwhile.

``REQUESTS`` counts every request these loops make (lists and watch starts), so
the benchmark reports the UI server's API traffic measured, not guessed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

from kubernetes.client.exceptions import ApiException

from kascade.api.base import GROUP, VERSION

log = logging.getLogger("kascade.kube.watch")

REQUESTS: Counter[str] = Counter()
"""(verb resource) → requests made by watchers: ``list pipelineruns``, ``watch pipelineruns``."""


def trim_memory() -> None:
    """Give freed heap back to the OS after a big list (glibc keeps it otherwise)."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if name:
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(name).malloc_trim(0)


def count_requests(api_client: Any) -> Any:
    """Count every HTTP request this client makes in ``REQUESTS["http"]`` (for the benchmark)."""
    rest = api_client.rest_client
    if getattr(rest, "_kascade_counted", False):
        return api_client
    original = rest.request

    def request(*args: Any, **kwargs: Any) -> Any:
        REQUESTS["http"] += 1
        return original(*args, **kwargs)

    rest.request = request
    rest._kascade_counted = True
    return api_client


WATCH_SECONDS = 300
RETRY_SECONDS = 5.0

OnEvent = Callable[[str, Any], None]
"""``(type, object)``: ADDED/MODIFIED/DELETED with an object; a (re)list is delivered as
PAGE events (a list of objects each) then SYNC with the (namespace, name) keys listed, so
the cache drops what is gone."""

PAGE_SIZE = 100
"""Lists are read in pages: a 1,000-run list is never held (with its specs) all at once."""


class Watcher:
    def __init__(
        self,
        kube: Any,
        resource: str,
        namespace: str | None,
        on_event: OnEvent,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> None:
        """``resource``: a Kascade plural (``pipelines``) or ``events``."""
        self.kube = kube
        self.resource = resource
        self.namespace = namespace
        self.on_event = on_event
        self.selectors: dict[str, str] = {}
        if label_selector:
            self.selectors["label_selector"] = label_selector
        if field_selector:
            self.selectors["field_selector"] = field_selector
        self.synced = threading.Event()
        self.error: str | None = None
        """The last failure (e.g. 403 Forbidden), shown by the UI until a list succeeds."""
        self._stop = threading.Event()
        self._resp: Any = None
        self._thread = threading.Thread(
            target=self._run, name=f"watch-{resource}-{namespace or 'all'}", daemon=True
        )

    def start(self) -> Watcher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        resp = self._resp
        if resp is not None:
            with contextlib.suppress(Exception):  # already closed
                resp.shutdown()

    # -- the loop --------------------------------------------------------------------------
    def _call(self, **kwargs: Any) -> Any:
        kwargs.update(self.selectors)
        if self.resource == "events":
            core = self.kube.core
            if self.namespace is None:
                return core.list_event_for_all_namespaces(**kwargs)
            return core.list_namespaced_event(self.namespace, **kwargs)
        custom = self.kube.custom
        if self.namespace is None:
            return custom.list_cluster_custom_object(GROUP, VERSION, self.resource, **kwargs)
        return custom.list_namespaced_custom_object(
            GROUP, VERSION, self.namespace, self.resource, **kwargs
        )

    def _list(self) -> str:
        seen: list[tuple[str, str]] = []
        token: str | None = None
        while True:
            REQUESTS[f"list {self.resource}"] += 1
            kwargs: dict[str, Any] = {"limit": PAGE_SIZE}
            if token:
                kwargs["_continue"] = token
            resp = self._call(_preload_content=False, **kwargs)
            try:
                body = json.loads(resp.data)
            finally:
                resp.release_conn()
            items = body.get("items") or []
            for obj in items:
                meta = obj.get("metadata") or {}
                seen.append((meta.get("namespace") or "", meta.get("name") or ""))
            self.on_event("PAGE", items)
            del items
            meta = body.get("metadata") or {}
            token = meta.get("continue") or None
            if not token:
                break
            del body
        self.on_event("SYNC", seen)
        self.error = None
        self.synced.set()
        trim_memory()
        return str(meta.get("resourceVersion") or "")

    def _watch(self, version: str) -> str | None:
        """Stream events from ``version``; the version to resume from, None to relist."""
        REQUESTS[f"watch {self.resource}"] += 1
        resp = self._call(
            watch=True,
            resource_version=version,
            allow_watch_bookmarks=True,
            timeout_seconds=WATCH_SECONDS,
            _preload_content=False,
            _request_timeout=(10, WATCH_SECONDS + 30),
        )
        self._resp = resp
        try:
            pending = b""
            for chunk in resp.stream(65536, decode_content=True):
                if self._stop.is_set():
                    return version
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    kind, obj = event.get("type"), event.get("object") or {}
                    if kind == "ERROR":
                        if obj.get("code") == 410:
                            return None
                        raise RuntimeError(obj.get("message") or "watch error")
                    version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
                    if kind != "BOOKMARK":
                        self.on_event(str(kind), obj)
        finally:
            self._resp = None
            resp.release_conn()
        return version

    def _run(self) -> None:
        version: str | None = None
        while not self._stop.is_set():
            try:
                if version is None:
                    version = self._list()
                version = self._watch(version)
            except ApiException as exc:
                if exc.status == 410:
                    version = None
                    continue
                self.error = f"{exc.status} {exc.reason}"
                log.warning("Watch of %s failed: %s", self.resource, self.error)
                version = None
                self._stop.wait(RETRY_SECONDS)
            except Exception as exc:  # connection reset, API server restart
                if self._stop.is_set():
                    return
                self.error = f"{type(exc).__name__}: {exc}"
                log.warning("Watch of %s interrupted: %s", self.resource, self.error)
                self._stop.wait(RETRY_SECONDS)
