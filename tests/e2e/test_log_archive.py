"""Logs that outlive their pods, on the real cluster with the real versitygw server.

Two ``kascade operator`` processes (each in a namespace of its own), configured as the
chart does it (``KASCADE_STORE_<key>``; the helper image is busybox, which has the
``sh``, ``wc`` and ``cat`` the outputs sidecar needs):

1. With a store that works: a run succeeds, its TaskRun records ``logArchived: true``,
   the object is in the bucket, the pod is deleted, and ``kascade logs`` and the UI's log
   endpoint still return the log, from the archive; without the store's settings, or
   once the object is gone, the message names the pod and the attempt and says why.
2. With a store that is down (an endpoint nothing listens on): the run still succeeds, and
   after the bounded retries the gap is reported: ``logArchived: false`` with why, a
   ``LogNotArchived`` Warning Event on the TaskRun, and
   ``kascade_log_archive_failures_total``.
3. What the archive keeps has the values of the Secrets the pod uses masked (``***``).
4. An operator killed after a run's end, while its last log was still being archived:
   the run says ``logArchivePending``, and the next operator archives the log, records it
   in the TaskRun and clears the mark.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

import servers
from kascade.integrations.objectstore import ObjectStore
from kascade.integrations.settings import ObjectStoreSettings

from .conftest import Cluster, kubeconfig_path, wait_until
from .operator_support import (
    ROOT,
    Kascade,
    apply_crds,
    delete_namespace,
    free_port,
    make_namespace,
    operator_namespace,
    pipeline,
    running_operator,
)
from .ui_support import ui_server

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

HELPER_IMAGE = "busybox:1.36"
SAYS = 'for i in 1 2 3; do echo "archived line $i of $(hostname)"; done'


def _operator(
    cluster: Cluster, stem: str, store: dict[str, str], tmp: pytest.TempPathFactory
) -> Iterator[Kascade]:
    env = {
        "KASCADE_HELPER_IMAGE": HELPER_IMAGE,
        **{f"KASCADE_STORE_{k}": v for k, v in store.items()},
    }
    log = tmp.mktemp("operator") / "operator.log"
    with operator_namespace(cluster, kubeconfig_path(), stem, log, env=env) as k:
        yield k


@pytest.fixture(scope="module")
def bucket(s3_server: servers.S3Server) -> str:
    return s3_server.make_bucket()


@pytest.fixture(scope="module")
def kas(
    cluster: Cluster, s3_server: servers.S3Server, bucket: str, tmp_path_factory: Any
) -> Iterator[Kascade]:
    settings = s3_server.settings(bucket=bucket, prefix="kascade")
    yield from _operator(cluster, "logarchive", settings, tmp_path_factory)


@pytest.fixture(scope="module")
def kas_store_down(
    cluster: Cluster, s3_server: servers.S3Server, tmp_path_factory: Any
) -> Iterator[Kascade]:
    dead = {**s3_server.settings(bucket="nowhere"), "endpoint": f"http://127.0.0.1:{free_port()}"}
    yield from _operator(cluster, "logarchive-down", {**dead, "timeout": "2"}, tmp_path_factory)


def _taskrun(kas: Kascade, run: str, task: str) -> dict[str, Any]:
    found = [
        t for t in kas.list("taskruns", f"kascade.io/run={run}") if t["spec"]["taskName"] == task
    ]
    return found[0] if found else {}


def _settled(kas: Kascade, run: str, task: str) -> dict[str, Any] | None:
    """The task's last attempt once the archive has recorded what it did with its log."""
    attempts = (_taskrun(kas, run, task).get("status") or {}).get("attempts") or []
    if attempts and attempts[-1].get("logArchived") is not None:
        return dict(attempts[-1])
    return None


def _kascade_logs(kas: Kascade, *args: str, store: dict[str, str] | None) -> Any:
    """``kascade logs`` as a user runs it: their kubeconfig and, with ``store``, the
    ``KASCADE_STORE_<key>`` variables of their shell."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KASCADE_STORE_")}
    env.update({f"KASCADE_STORE_{k}": v for k, v in (store or {}).items()})
    env.update({"KUBECONFIG": kubeconfig_path(), "PYTHONPATH": str(ROOT / "operator")})
    return subprocess.run(
        [sys.executable, "-m", "kascade", "logs", *args, "-n", kas.ns],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def _pod_exists(kas: Kascade, pod: str) -> bool:
    selector = f"metadata.name={pod}"
    return bool(kas.core.list_namespaced_pod(kas.ns, field_selector=selector).items)


def test_a_log_is_read_from_the_archive_after_its_pod_is_deleted(
    cluster: Cluster, kas: Kascade, s3_server: servers.S3Server, bucket: str, tmp_path: Path
) -> None:
    apply_crds(cluster.api)  # again: another branch's tier may have pruned logArchived since
    kas.apply_pipeline(
        pipeline("says", [{"name": "say", "image": "busybox:1.36", "command": ["sh", "-c", SAYS]}])
    )
    run = kas.wait_run(kas.create_run("says", name="says-1"))
    assert run["status"]["phase"] == "success"
    attempt = wait_until(lambda: _settled(kas, "says-1", "say"), 60, what="logArchived")
    assert (attempt["logArchived"], attempt.get("logArchiveMessage")) == (True, None)
    pod = attempt["podName"]
    text = "".join(f"archived line {i} of {pod}\n" for i in (1, 2, 3))

    settings = ObjectStoreSettings.from_data(s3_server.settings(bucket=bucket), "test")
    key = f"kascade/logs/{kas.ns}/says-1/say/attempt-1.log"
    assert ObjectStore(settings).get(key).decode() == text

    kas.core.delete_namespaced_pod(pod, kas.ns, grace_period_seconds=0)
    wait_until(lambda: not _pod_exists(kas, pod), 60, what="the pod to go")
    store = s3_server.settings(bucket=bucket, prefix="kascade")
    out = _kascade_logs(kas, "says-1", "--task", "say", store=store)
    assert (out.returncode, out.stdout) == (0, text), out.stderr
    without = _kascade_logs(kas, "says-1", "--task", "say", store=None)
    assert without.returncode == 1
    assert f"the pod {pod} of attempt 1 is gone and no log archive is configured" in without.stderr

    # The UI's log endpoint (kascade ui with the same store settings, as the chart gives it).
    shell = {f"KASCADE_STORE_{k}": v for k, v in store.items()}
    with (
        mock.patch.dict(os.environ, shell),
        ui_server(Path(kubeconfig_path()), kas.ns, tmp_path / "ui.log") as base,
        urllib.request.urlopen(f"{base}/api/logs/{kas.ns}/says-1/say/1", timeout=30) as answer,
    ):
        assert answer.read().decode() == text

    # Neither the pod nor the archive: the message names the pod and the attempt, and why.
    ObjectStore(settings).delete(key)
    gone = _kascade_logs(kas, "says-1", "--task", "say", store=store)
    assert gone.returncode == 1
    assert (
        f"the pod {pod} of attempt 1 of say is gone and the log archive has no log for it: "
        "the operator archived it, but the object is gone" in gone.stderr
    ), gone.stderr


def test_the_archived_log_has_the_pods_secrets_masked(
    kas: Kascade, s3_server: servers.S3Server, bucket: str
) -> None:
    secret = "s3cr3t-" + bucket  # unique, and long enough to be masked
    kas.core.create_namespaced_secret(
        kas.ns, {"metadata": {"name": "db"}, "stringData": {"TOKEN": secret}}
    )
    env = [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "db", "key": "TOKEN"}}}]
    say = 'echo "token is $TOKEN"'
    task = {"name": "say", "command": ["sh", "-c", say], "env": env}
    kas.apply_pipeline(pipeline("tells", [task]))
    run = kas.wait_run(kas.create_run("tells", name="tells-1"))
    assert run["status"]["phase"] == "success"
    attempt = wait_until(lambda: _settled(kas, "tells-1", "say"), 60, what="logArchived")
    assert attempt["logArchived"] is True
    settings = ObjectStoreSettings.from_data(s3_server.settings(bucket=bucket), "test")
    key = f"kascade/logs/{kas.ns}/tells-1/say/attempt-1.log"
    assert ObjectStore(settings).get(key).decode() == "token is ***\n"


def test_a_store_that_is_down_never_fails_the_run_and_the_gap_is_reported(
    cluster: Cluster, kas_store_down: Kascade
) -> None:
    kas = kas_store_down
    apply_crds(cluster.api)  # again: another branch's tier may have pruned logArchived since
    kas.apply_pipeline(
        pipeline("says", [{"name": "say", "image": "busybox:1.36", "command": ["sh", "-c", SAYS]}])
    )
    started = time.monotonic()
    run = kas.wait_run(kas.create_run("says", name="says-down"))
    assert run["status"]["phase"] == "success"
    run_seconds = time.monotonic() - started
    attempt = wait_until(lambda: _settled(kas, "says-down", "say"), 180, what="logArchived")
    gave_up = time.monotonic() - started
    print(f"run succeeded after {run_seconds:.1f}s; archive gave up after {gave_up:.1f}s")
    assert attempt["logArchived"] is False
    message = attempt["logArchiveMessage"]
    assert "the store did not take it: put s3://nowhere/logs/" in message
    assert "(after 5 tries)" in message
    assert "secretAccessKey" not in message

    taskrun = _taskrun(kas, "says-down", "say")["metadata"]["name"]
    events = wait_until(
        lambda: [
            e
            for e in kas.core.list_namespaced_event(kas.ns).items
            if e.reason == "LogNotArchived" and e.involved_object.name == taskrun
        ],
        30,
        what="the LogNotArchived Event",
    )
    assert events[0].type == "Warning"
    assert events[0].message.startswith(f"the log of attempt 1 (pod {attempt['podName']})")
    failures = [
        line
        for line in kas.operator.metrics().splitlines()
        if line.startswith("kascade_log_archive_failures_total{")
    ]
    assert failures == [
        f'kascade_log_archive_failures_total{{namespace="{kas.ns}",pipeline="says"}} 1.0'
    ]


def test_the_next_operator_archives_what_a_killed_one_left_pending(
    cluster: Cluster, s3_server: servers.S3Server, bucket: str, tmp_path: Path
) -> None:
    namespace = make_namespace(cluster, "logarchive-restart")
    apply_crds(cluster.api)
    kas = Kascade(cluster.api, namespace)
    live = s3_server.settings(bucket=bucket, prefix="kascade")
    down = {**live, "endpoint": f"http://127.0.0.1:{free_port()}", "timeout": "2"}
    log = tmp_path / "operator.log"

    def env(store: dict[str, str]) -> dict[str, str]:
        return {
            "KASCADE_HELPER_IMAGE": HELPER_IMAGE,
            **{f"KASCADE_STORE_{k}": v for k, v in store.items()},
        }

    try:
        with running_operator(kubeconfig_path(), [namespace], log, env(down)) as first:
            kas.apply_pipeline(pipeline("says", [{"name": "say", "command": ["sh", "-c", SAYS]}]))
            run = kas.wait_run(kas.create_run("says", name="says-left"))
            first.kill(hard=True)  # while the store is still being tried (backoff 2 s, 4 s...)
        assert (run["status"]["phase"], run["status"].get("logArchivePending")) == ("success", True)
        attempt = _taskrun(kas, "says-left", "say")["status"]["attempts"][-1]
        assert attempt.get("logArchived") is None
        with running_operator(kubeconfig_path(), [namespace], log, env(live)):
            attempt = wait_until(lambda: _settled(kas, "says-left", "say"), 60, what="logArchived")
            assert (attempt["logArchived"], attempt.get("logArchiveMessage")) == (True, None)
            wait_until(
                lambda: "logArchivePending" not in kas.get("pipelineruns", "says-left")["status"],
                30,
                what="the mark to be cleared",
            )
        settings = ObjectStoreSettings.from_data(s3_server.settings(bucket=bucket), "test")
        key = f"kascade/logs/{namespace}/says-left/say/attempt-1.log"
        expected = "".join(f"archived line {i} of {attempt['podName']}\n" for i in (1, 2, 3))
        assert ObjectStore(settings).get(key).decode() == expected
    finally:
        print(log.read_text()[-5000:] if log.exists() else "(no operator log)")
        delete_namespace(cluster, namespace)
