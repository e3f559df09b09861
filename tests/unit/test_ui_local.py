"""Local runs seen through ``kascade get``/``logs`` and the UI's history mode.

Real ``kascade run`` processes write the history; nothing is faked.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from click.testing import CliRunner

from kascade.cli.main import cli
from kascade.ui import layout
from kascade.ui.store import Store

OPERATOR = Path(__file__).resolve().parents[2] / "operator"
DATE = "2026-03-01"

GREETER = """
apiVersion: kascade.io/v1alpha1
kind: Pipeline
metadata: {name: greeter}
spec:
  schedule: "@daily"
  params:
    word: {type: string, default: hello}
  defaults: {image: busybox:1.36}
  tasks:
    - name: say
      script: echo "{{ params.word }}"
    - name: flaky
      retries: 1
      retryDelay: 1s
      script: |
        if [ ! -e "$MARK" ]; then touch "$MARK"; echo "first try fails"; exit 1; fi
        echo "second try works"
      env: [{name: MARK, value: "{{ params.word }}.mark"}]
"""

SLOW = """
apiVersion: kascade.io/v1alpha1
kind: Pipeline
metadata: {name: slow}
spec:
  defaults: {image: busybox:1.36}
  tasks:
    - name: ticker
      script: for i in 1 2 3 4; do echo tick $i; sleep 1; done
"""


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("KASCADE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.kube/config: the local history is used
    monkeypatch.chdir(tmp_path)
    return tmp_path / "home"


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def run_greeter(tmp_path: Path, word: str) -> str:
    """One run for the logical date DATE; its ref (run id: manual__<trigger time>)."""
    path = tmp_path / "greeter.yaml"
    path.write_text(GREETER)
    code, out, err = invoke(
        "run", str(path), "--output", "json", "--param", f"word={word}", "--logical-date", DATE
    )
    assert code == 0, err
    record = json.loads(out)
    assert record["logicalDate"] == f"{DATE}T00:00:00+00:00"
    assert record["ref"] == record["runId"]
    return str(record["ref"])


def test_a_later_run_never_overwrites_an_earlier_runs_logs(tmp_path: Path, home: Path) -> None:
    first = run_greeter(tmp_path, "bonjour")
    second = run_greeter(tmp_path, "hola")  # same logical date: a run id of its own
    assert first != second
    folder = home / "local-runs" / "greeter"
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [first, f"{first}.json", second, f"{second}.json"]
    )
    assert (folder / first / "logs/say/attempt-1.log").read_text() == "bonjour\n"
    assert (folder / second / "logs/say/attempt-1.log").read_text() == "hola\n"
    code, out, _ = invoke("logs", f"greeter/{first}", "--task", "say")
    assert (code, out) == (0, "bonjour\n")
    code, out, _ = invoke("logs", second, "--task", "say")
    assert (code, out) == (0, "hola\n")


def test_two_runs_with_one_id_get_two_folders(home: Path) -> None:
    """Two runs started in the same microsecond: the second folder is ``<id>~2``."""
    from kascade.local.history import LocalHistory

    history = LocalHistory()
    a = history.new_run_dir("greeter", "manual__2026-03-01T00:00:00+00:00")
    b = history.new_run_dir("greeter", "manual__2026-03-01T00:00:00+00:00")
    assert (a.name, b.name) == (
        "manual__2026-03-01T00:00:00+00:00",
        "manual__2026-03-01T00:00:00+00:00~2",
    )


def test_logs_of_each_attempt_and_clear_errors(tmp_path: Path) -> None:
    ref = run_greeter(tmp_path, "ciao")
    code, out, _ = invoke("logs", ref, "--task", "flaky")
    assert (code, out) == (0, "second try works\n")
    code, out, _ = invoke("logs", ref, "--task", "flaky", "--attempt", "1")
    assert (code, out) == (0, "first try fails\n")
    code, _, err = invoke("logs", ref, "--task", "flaky", "--attempt", "3")
    assert code == 1 and "task flaky has no attempt 3 (attempts: 1, 2)" in err
    code, _, err = invoke("logs", ref, "--task", "nope")
    assert code == 1 and "has no task instance 'nope'" in err
    code, _, err = invoke("logs", "no-such-run")
    assert code == 1 and "no local run 'no-such-run'" in err
    code, out, _ = invoke("logs", ref)
    assert "==> say (attempt 1, success) <==\nciao\n" in out
    assert "==> flaky (attempt 2, success) <==\nsecond try works\n" in out


def test_get_shows_the_ui_columns_for_local_runs(tmp_path: Path) -> None:
    ref = run_greeter(tmp_path, "salut")
    code, out, _ = invoke("get", "pipelines")
    assert code == 0
    header, row = out.splitlines()
    assert header.split() == [
        "NAMESPACE", "NAME", "SCHEDULE", "NEXT", "RUN", "PAUSED", "LAST", "RUNS", "TAGS",
    ]  # fmt: skip
    assert row.split()[:3] == ["-", "greeter", "@daily"] and "■" in row
    code, out, _ = invoke("get", "runs", "-o", "json")
    assert code == 0
    (run,) = json.loads(out)
    assert run["name"] == f"greeter/{ref}" and run["phase"] == "success"
    assert run["progress"] == "2/2" and run["params"] == {"word": "salut"}
    code, out, _ = invoke("get", "tasks", f"greeter/{ref}", "-o", "wide")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:7] == ["RUN", "TASK", "STATE", "TRIES", "STARTED", "DURATION", "EXIT"]
    flaky = next(line for line in lines if " flaky " in line)
    assert " 2 " in flaky and "success" in flaky
    _, out, _ = invoke("get", "runs", "-o", "yaml")
    assert "phase: success" in out


def test_logs_follow_a_running_local_task(tmp_path: Path, home: Path) -> None:
    (tmp_path / "slow.yaml").write_text(SLOW)
    env = {**os.environ, "PYTHONPATH": str(OPERATOR)}
    runner = subprocess.Popen(
        [sys.executable, "-m", "kascade", "run", "slow.yaml", "-q"], env=env, cwd=tmp_path
    )
    try:
        deadline = time.monotonic() + 30
        while not list((home / "local-runs" / "slow").glob("*.json")):
            assert time.monotonic() < deadline, "the run's record never appeared"
            time.sleep(0.1)
        ref = next((home / "local-runs" / "slow").glob("*.json")).stem
        follower = subprocess.Popen(
            [sys.executable, "-m", "kascade", "logs", ref, "--task", "ticker", "-f"],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert follower.stdout is not None
        first = follower.stdout.readline()
        running = runner.poll() is None
        rest = follower.stdout.read()
        assert follower.wait(timeout=30) == 0
    finally:
        runner.wait(timeout=30)
    assert first == "tick 1\n" and running, "the first line came only after the run ended"
    assert rest == "tick 2\ntick 3\ntick 4\n"


def test_history_mode_server_shows_local_runs_read_only(tmp_path: Path, home: Path) -> None:
    from kascade.local.history import LocalHistory
    from kascade.ui import auth, readers
    from kascade.ui.feeds import HistoryFeed
    from kascade.ui.logs import FileLogs
    from kascade.ui.server import create_app

    ref = run_greeter(tmp_path, "hej")

    async def main() -> None:
        store = Store()
        reader = readers.LocalReader(LocalHistory())
        app = create_app(
            auth.HistoryAuthority(),
            store,
            HistoryFeed(store, reader.history),
            kube=None,
            log_source=lambda kube: FileLogs(reader),
        )
        async with TestClient(TestServer(app)) as client:
            local = {"Host": "localhost:8080"}
            listed = await (await client.get("/api/pipelines", headers=local)).json()
            assert [p["name"] for p in listed["pipelines"]] == ["greeter"]
            run = f"greeter%2F{ref.replace(':', '%3A').replace('+', '%2B')}"
            page = await (await client.get(f"/api/runs/-/{run}", headers=local)).json()
            assert {t["key"]: t["attempts"] for t in page["tasks"]} == {"say": 1, "flaky": 2}
            task = await (await client.get(f"/api/runs/-/{run}/tasks/say", headers=local)).json()
            assert task["rendered"] == {"script": 'echo "hej"'}
            log = await client.get(f"/api/logs/-/{run}/flaky/1", headers=local)
            assert await log.text() == "first try fails\n"
            session = await (await client.get("/api/session", headers=local)).json()
            refused = await client.post(
                "/api/actions/trigger",
                json={"namespace": "x", "pipeline": "greeter"},
                headers={**local, "X-CSRF-Token": session["csrf"]},
            )
            assert refused.status == 403
            foreign = await client.get("/api/pipelines", headers={"Host": "evil.example:8080"})
            assert foreign.status == 403  # DNS rebinding: only loopback Host headers

    asyncio.run(main())


def test_store_drops_what_a_relist_no_longer_shows() -> None:
    def obj(name: str) -> dict[str, Any]:
        return {"metadata": {"namespace": "a", "name": name}, "spec": {"slots": 1}}

    async def main() -> None:
        store = Store()
        store.apply("pools", "a", "PAGE", [obj("x"), obj("y")])
        store.apply("pools", "a", "SYNC", [("a", "x"), ("a", "y")])
        store.apply(
            "pools", "b", "PAGE", [{**obj("z"), "metadata": {"namespace": "b", "name": "z"}}]
        )
        store.apply("pools", "a", "PAGE", [obj("y")])  # a relist after a watch expired
        store.apply("pools", "a", "SYNC", [("a", "y")])
        assert sorted(store.pools) == [("a", "y"), ("b", "z")]
        seen: list[set[str]] = []
        store.subscribe(seen.append)
        versioned = {
            **obj("y"),
            "metadata": {"namespace": "a", "name": "y", "resourceVersion": "7"},
        }
        store.apply("pools", "a", "MODIFIED", versioned)
        await asyncio.sleep(0.3)
        assert seen == [{"pools"}]
        store.apply("pools", "a", "PAGE", [versioned])  # relisted, unchanged: pages stay quiet
        store.apply("pools", "a", "SYNC", [("a", "y")])
        await asyncio.sleep(0.3)
        assert seen == [{"pools"}]

    asyncio.run(main())


def test_graph_layout_layers_and_edges() -> None:
    ids = ["a", "b", "c", "d"]
    drawn = layout.layout(ids, {"b": ["a"], "c": ["a"], "d": ["b", "c"]})
    x = {n["id"]: n["x"] for n in drawn["nodes"]}
    assert x["a"] < x["b"] == x["c"] < x["d"]
    assert len(drawn["edges"]) == 4
    big = [f"t{i}" for i in range(1000)]
    started = time.monotonic()
    layout.layout(big, {f"t{i}": [f"t{i // 2}"] for i in range(1, 1000)})
    assert time.monotonic() - started < 2  # generous: it takes milliseconds
