"""Typed keys of the UI application and its requests (aiohttp's AppKey/RequestKey)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiohttp import web

from kascade.ui.auth import Authority, User
from kascade.ui.store import Store

AUTH = web.AppKey("auth", Authority)
STORE = web.AppKey("store", Store)
FEED: web.AppKey[Any] = web.AppKey("feed")
"""feeds.ClusterFeed or feeds.HistoryFeed."""
KUBE: web.AppKey[Any] = web.AppKey("kube")
"""The server's own (read-only) client; None for local history."""
LOG_SOURCE: web.AppKey[Any] = web.AppKey("log_source")
"""user kube → logs.LogSource."""
LOG_THREADS = web.AppKey("log_threads", ThreadPoolExecutor)
STREAMS: web.AppKey[set[web.StreamResponse]] = web.AppKey("streams")
USER = web.RequestKey("user", User)
