"""Assemble and run the UI server for one of its three modes (see ``ui/auth.py``)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from aiohttp import web

log = logging.getLogger("kascade.ui")


@dataclass(frozen=True)
class Options:
    address: str = "127.0.0.1"
    port: int = 8080
    namespaces: tuple[str, ...] = ()
    """Empty: every namespace."""
    kubeconfig: str | None = None
    local: bool = False
    read_only: bool = False
    auth: str = "auto"
    """kubeconfig | token | auto (token in a cluster, kubeconfig elsewhere)."""
    allow_hosts: tuple[str, ...] = ()
    log_archive: Any = None
    """Where logs are read once their pods are gone (an ``integrations.log_archive.LogArchive``;
    None: no store configured, logs live as long as their pods)."""


def build(options: Options) -> web.Application:
    import os

    from kascade.ui import auth, readers
    from kascade.ui.logs import FileLogs, PodLogs
    from kascade.ui.store import Store

    store = Store()
    hosts = frozenset(options.allow_hosts)
    if options.local or (options.kubeconfig is None and readers.no_cluster_configured()):
        from kascade.ui.feeds import HistoryFeed

        reader = readers.LocalReader()
        return _app(
            auth.HistoryAuthority(hosts),
            store,
            HistoryFeed(store, reader.history),
            None,
            lambda kube: FileLogs(reader),
        )
    from kascade.kube.client import Kube, load_config
    from kascade.kube.reviews import current_user_name
    from kascade.kube.watching import count_requests
    from kascade.ui.feeds import ClusterFeed

    load_config(options.kubeconfig)
    kube = Kube()
    count_requests(kube.api)
    mode = options.auth
    if mode == "auto":
        mode = "token" if os.environ.get("KUBERNETES_SERVICE_HOST") else "kubeconfig"
    authority: auth.Authority
    if mode == "token":
        authority = auth.TokenAuthority(kube, options.read_only)
    else:
        authority = auth.KubeconfigAuthority(kube, current_user_name(), options.read_only, hosts)
    feed = ClusterFeed(kube, store, list(options.namespaces) or None)
    archive = options.log_archive
    return _app(authority, store, feed, kube, lambda user_kube: PodLogs(user_kube, archive))


def _app(authority: Any, store: Any, feed: Any, kube: Any, log_source: Any) -> web.Application:
    from kascade.ui.server import create_app

    return create_app(authority, store, feed, kube=kube, log_source=log_source)


def serve(options: Options) -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    app = build(options)
    from kascade.ui import keys

    authority = app[keys.AUTH]
    print(
        f"Kascade UI on http://{options.address}:{options.port}/ "
        f"({authority.mode}{', read-only' if authority.read_only else ''})",
        flush=True,
    )
    web.run_app(
        app,
        host=options.address,
        port=options.port,
        print=None,
        access_log=None,
        shutdown_timeout=5,
    )
