"""The local runner against real processes: small inline pipelines, each a few hundred ms."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from kascade.api.runs import RunPhase, TaskState
from kascade.engine.context import RunContext
from kascade.engine.schedule import DataInterval
from kascade.engine.validation import validate_document
from kascade.local import processes
from kascade.local.events import Event
from kascade.local.history import LocalHistory
from kascade.local.progress import PlainProgress, describe
from kascade.local.runner import LocalRunner

LOGICAL = datetime(2026, 1, 1, tzinfo=UTC)


def manifest(tasks: str, extra: str = "", name: str = "t") -> dict[str, Any]:
    text = f"""
apiVersion: kascade.io/v1alpha1
kind: Pipeline
metadata: {{name: {name}}}
spec:
{extra}
  defaults: {{image: busybox:1.36}}
  tasks:
{tasks}
"""
    doc = yaml.safe_load(text)
    assert isinstance(doc, dict)
    return doc


def run(
    tmp_path: Path,
    tasks: str,
    extra: str = "",
    *,
    events: list[Event] | None = None,
    history: LocalHistory | None = None,
    name: str = "t",
) -> LocalRunner:
    _, plan, issues = validate_document(manifest(tasks, extra, name))
    assert plan is not None, [str(i) for i in issues]
    ctx = RunContext(
        run_id="manual__test",
        logical_date=LOGICAL,
        interval=DataInterval(LOGICAL, LOGICAL),
        params={},
        pipeline=name,
    )
    runner = LocalRunner(
        plan,
        ctx,
        workdir=tmp_path / "work",
        on_event=events.append if events is not None else (lambda e: None),
        external=history,
        cwd=str(tmp_path),
    )
    runner.execute()
    return runner


def states(runner: LocalRunner) -> dict[str, str]:
    return {k: i.state.value for k, i in runner.engine.instances.items()}


def test_chain_succeeds_and_logs_each_attempt(tmp_path: Path) -> None:
    runner = run(
        tmp_path,
        """
    - {name: a, command: [echo, hello]}
    - {name: b, command: [sh, -c, "echo from b >&2"], dependsOn: [a]}
    - {name: c, command: ["true"], dependsOn: [b]}
""",
    )
    assert runner.engine.phase is RunPhase.SUCCESS
    assert states(runner) == {"a": "success", "b": "success", "c": "success"}
    assert (tmp_path / "work/logs/a/attempt-1.log").read_text() == "hello\n"
    assert (tmp_path / "work/logs/b/attempt-1.log").read_text() == "from b\n"
    record = runner.record()
    assert record["phase"] == "success"
    assert record["tasks"]["a"]["attempts"] == 1


def test_failure_makes_downstream_upstream_failed(tmp_path: Path) -> None:
    runner = run(
        tmp_path,
        """
    - {name: a, script: "echo boom; exit 3"}
    - {name: b, command: ["true"], dependsOn: [a]}
""",
    )
    assert runner.engine.phase is RunPhase.FAILED
    assert states(runner) == {"a": "failed", "b": "upstream_failed"}
    assert runner.engine.instances["a"].exit_code == 3
    log, lines = runner.tails["a"]
    assert lines == ["boom"] and log.name == "attempt-1.log"


def test_flaky_task_succeeds_on_retry(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    runner = run(
        tmp_path,
        f"""
    - name: flaky
      retries: 2
      retryDelay: 100ms
      script: |
        if [ -f {marker} ]; then echo second; exit 0; fi
        touch {marker}; echo "try $KASCADE_TRY_NUMBER"; exit 1
""",
    )
    inst = runner.engine.instances["flaky"]
    assert inst.state is TaskState.SUCCESS and inst.attempt == 2
    assert (tmp_path / "work/logs/flaky/attempt-1.log").read_text() == "try 1\n"
    assert (tmp_path / "work/logs/flaky/attempt-2.log").read_text() == "second\n"


def test_timeout_kills_the_process_group(tmp_path: Path) -> None:
    started = time.monotonic()
    runner = run(
        tmp_path,
        """
    - {name: slow, timeout: 500ms, script: "sleep 30 & sleep 30; wait"}
""",
    )
    assert time.monotonic() - started < 3
    inst = runner.engine.instances["slow"]
    assert inst.state is TaskState.FAILED
    assert inst.attempts[0].reason == "Timeout"
    assert "timed out" in (inst.message or "")


def test_outputs_flow_downstream_through_templates(tmp_path: Path) -> None:
    runner = run(
        tmp_path,
        """
    - name: extract
      script: |
        echo rows=42 >> "$KASCADE_OUTPUTS"
        echo 'name="orders"' >> "$KASCADE_OUTPUTS"
    - name: load
      dependsOn: [extract]
      env: [{name: ROWS, value: "{{ tasks.extract.outputs.rows }}"}]
      script: |
        test "$ROWS" = 42
        printf '{"got": "%s", "table": "{{ tasks.extract.outputs.name }}"}' "$ROWS" \\
          > "$KASCADE_OUTPUTS"
""",
    )
    assert runner.engine.phase is RunPhase.SUCCESS
    assert runner.engine.outputs_of("extract") == {"rows": 42, "name": "orders"}
    assert runner.engine.outputs_of("load") == {"got": "42", "table": "orders"}


def test_outputs_over_the_limit_fail_clearly(tmp_path: Path) -> None:
    runner = run(
        tmp_path,
        """
    - {name: big, script: "head -c 5000 /dev/zero | tr '\\\\0' x > \\"$KASCADE_OUTPUTS\\""}
""",
    )
    inst = runner.engine.instances["big"]
    assert inst.state is TaskState.FAILED
    assert inst.attempts[0].reason == "OutputsTooLarge"
    assert "5000 bytes, over the 4096-byte limit" in (inst.message or "")


def test_branch_follows_the_chosen_task(tmp_path: Path) -> None:
    runner = run(
        tmp_path,
        """
    - {name: choose, branch: true, script: "echo branch=small >> $KASCADE_OUTPUTS"}
    - {name: small, command: ["true"], dependsOn: [choose]}
    - {name: large, command: ["true"], dependsOn: [choose]}
    - {name: after-large, command: ["true"], dependsOn: [large]}
""",
    )
    assert states(runner) == {
        "choose": "success",
        "small": "success",
        "large": "skipped",
        "after-large": "skipped",
    }
    assert runner.engine.phase is RunPhase.SUCCESS


def test_file_sensor_in_reschedule_mode_waits_for_the_producer(tmp_path: Path) -> None:
    target = tmp_path / "landing" / "orders.csv"
    runner = run(
        tmp_path,
        f"""
    - {{name: produce, script: "sleep 0.4; mkdir -p {target.parent}; touch {target}"}}
    - name: wait
      sensor: {{kind: file, path: "{tmp_path}/landing/*.csv", pokeInterval: 100ms,
               timeout: 10s, mode: reschedule}}
    - {{name: consume, command: [cat, "{target}"], dependsOn: [wait]}}
""",
    )
    assert states(runner) == {"produce": "success", "wait": "success", "consume": "success"}
    assert runner.engine.instances["wait"].pokes >= 1  # it did wait


def test_file_sensor_times_out_soft(tmp_path: Path) -> None:
    runner = run(
        tmp_path,
        f"""
    - name: wait
      sensor: {{kind: file, path: "{tmp_path}/never", pokeInterval: 100ms, timeout: 300ms,
               softFail: true}}
""",
    )
    assert states(runner) == {"wait": "skipped"}


@pytest.mark.parametrize("mode", ["poke", "reschedule"])
def test_command_sensor_pokes_until_met(tmp_path: Path, mode: str) -> None:
    counter = tmp_path / "count"
    runner = run(
        tmp_path,
        f"""
    - name: ready
      sensor: {{pokeInterval: 100ms, timeout: 10s, mode: {mode}}}
      script: |
        n=$(cat {counter} 2>/dev/null || echo 0)
        echo $((n + 1)) > {counter}
        [ "$n" -ge 2 ] || exit 100
""",
    )
    assert states(runner) == {"ready": "success"}
    assert counter.read_text().strip() == "3"
    assert runner.engine.instances["ready"].attempt == 1


def test_mapped_task_collects_outputs_per_item(tmp_path: Path) -> None:
    runner = run(
        tmp_path,
        """
    - name: square
      expand: {items: [1, 2, 3]}
      script: |
        echo "sq=$(( {{ item }} * {{ item }} ))" >> "$KASCADE_OUTPUTS"
        echo "index=$KASCADE_MAP_INDEX" >> "$KASCADE_OUTPUTS"
    - name: total
      dependsOn: [square]
      script: |
        test '{{ tasks.square.outputs.sq }}' = '[1,4,9]'
""",
    )
    assert runner.engine.phase is RunPhase.SUCCESS, runner.record()
    assert runner.engine.outputs_of("square") == {"sq": [1, 4, 9], "index": [0, 1, 2]}
    assert runner.record()["tasks"]["square[2]"]["outputs"] == {"sq": 9, "index": 2}


def test_environment_and_shebang_scripts(tmp_path: Path) -> None:
    runner = run(
        tmp_path,
        """
    - name: env
      env:
        - {name: GREETING, value: "hi {{ ds }}"}
        - {name: SECRET, valueFrom: {secretKeyRef: {name: s, key: k}}}
      script: |
        #!/bin/sh
        cat > "$KASCADE_OUTPUTS" <<EOF
        {"g": "$GREETING", "task": "$KASCADE_TASK", "try": $KASCADE_TRY_NUMBER,
         "ds": "$KASCADE_DS", "run": "$KASCADE_RUN_ID", "map": $KASCADE_MAP_INDEX}
        EOF
""",
    )
    assert runner.engine.outputs_of("env") == {
        "g": "hi 2026-01-01",
        "task": "env",
        "try": 1,
        "ds": "2026-01-01",
        "run": "manual__test",
        "map": -1,
    }


def test_missing_command_fails_the_attempt(tmp_path: Path) -> None:
    runner = run(tmp_path, "    - {name: a, command: [no-such-command-kascade]}\n")
    inst = runner.engine.instances["a"]
    assert inst.state is TaskState.FAILED
    assert "cannot start" in (inst.message or "")


def test_failure_hook_runs_and_never_fails_the_run(tmp_path: Path) -> None:
    out = tmp_path / "hook.out"
    runner = run(
        tmp_path,
        f"""
    - name: a
      command: ["true"]
      notifications:
        - name: tell
          events: [success]
          hook: {{image: busybox, script: 'echo "$KASCADE_EVENT $KASCADE_TASK" > {out}'}}
        - name: broken
          events: [success]
          webhook: {{url: "http://127.0.0.1:9/nowhere"}}
""",
    )
    assert runner.engine.phase is RunPhase.SUCCESS
    assert out.read_text() == "success a\n"


def test_external_task_sensor_reads_local_history(tmp_path: Path) -> None:
    history = LocalHistory(tmp_path / "history")
    upstream = run(tmp_path / "up", "    - {name: a, command: ['true']}\n", name="upstream")
    history.save(upstream.record())
    runner = run(
        tmp_path,
        """
    - name: wait
      sensor: {kind: externalTask, pipeline: upstream, task: a, pokeInterval: 100ms,
               timeout: 2s}
    - name: wait-run
      sensor: {kind: externalTask, pipeline: upstream, pokeInterval: 100ms, timeout: 2s}
""",
        history=history,
    )
    assert states(runner) == {"wait": "success", "wait-run": "success"}
    saved = json.loads((tmp_path / "history/upstream/manual__test.json").read_text())
    assert saved["phase"] == "success"


def test_plain_progress_prints_state_changes(tmp_path: Path) -> None:
    events: list[Event] = []
    run(tmp_path, "    - {name: a, script: 'exit 1'}\n", events=events)
    lines = [line for e in events if (line := describe(e))]
    assert any(" a running (attempt 1)" in line for line in lines)
    assert any(" a failed (" in line and "attempt 1): exit code 1" in line for line in lines)

    class Sink:
        text = ""

        def write(self, s: str) -> None:
            self.text += s

        def flush(self) -> None:
            pass

    sink = Sink()
    for e in events:
        PlainProgress(sink)(e)  # type: ignore[arg-type]
    assert sink.text.count("\n") == len(lines)


def test_value_from_is_ignored_with_one_warning(tmp_path: Path) -> None:
    events: list[Event] = []
    run(
        tmp_path,
        """
    - name: a
      expand: {items: [1, 2]}
      env: [{name: SECRET, valueFrom: {secretKeyRef: {name: s, key: k}}}]
      command: ["true"]
""",
        events=events,
    )
    notices = [e.message for e in events if e.kind == "notice"]
    assert notices == ["env SECRET: valueFrom is ignored locally"]


@pytest.fixture
def http_server() -> Iterator[str]:
    hits: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(1)
            ready = len(hits) >= 3
            body = b"status: ready" if ready else b"status: starting"
            self.send_response(200 if ready else 503)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/health"
    server.shutdown()


def test_http_sensor_pokes_in_process(tmp_path: Path, http_server: str) -> None:
    runner = run(
        tmp_path,
        f"""
    - name: up
      sensor: {{kind: http, url: "{http_server}", responseContains: ready,
               pokeInterval: 100ms, timeout: 10s}}
    - {{name: after, command: ["true"], dependsOn: [up]}}
""",
    )
    assert states(runner) == {"up": "success", "after": "success"}
    assert not (tmp_path / "work/logs/up").exists()  # no process was started


def test_timeout_escalates_to_sigkill(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(processes, "KILL_GRACE_SECONDS", 0.3)
    started = time.monotonic()
    runner = run(
        tmp_path,
        """
    - {name: stubborn, timeout: 300ms, script: "trap '' TERM; echo ready; sleep 30"}
""",
    )
    assert time.monotonic() - started < 3
    inst = runner.engine.instances["stubborn"]
    assert inst.state is TaskState.FAILED and inst.attempts[0].reason == "Timeout"
    assert runner.tails["stubborn"][1] == ["ready"]
