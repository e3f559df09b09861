"""File sensor pokes run off the event loop, within their timeout (issue 13).

A pattern such as ``/**/x`` over a big tree was walked on the event loop: the runner
froze, ignored Ctrl-C and its own 10 s timeout. Here the tree answers slowly (each
directory entry costs 10 ms, so a full walk takes half a minute) and the run must
still end when the sensor's timeout says, or at once on Ctrl-C. The pytest timeouts
guard against the old hang; they are not speed targets.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from kascade.api.runs import RunPhase
from kascade.engine.context import RunContext
from kascade.engine.schedule import DataInterval
from kascade.engine.validation import validate_document
from kascade.local.runner import LocalRunner
from kascade.local.sensors import file_met

LOGICAL = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def slow_tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """50 folders of 50 files; listing a folder of the tree costs 10 ms an entry."""
    root = tmp_path / "landing"
    for i in range(50):
        folder = root / f"d{i}"
        folder.mkdir(parents=True)
        for j in range(50):
            (folder / f"f{j}").write_text("x")
    real = os.scandir

    class Slow:
        def __init__(self, path: Any) -> None:
            self.inner = real(path)

        def __enter__(self) -> Slow:
            return self

        def __exit__(self, *exc: object) -> None:
            self.inner.close()

        def __iter__(self) -> Iterator[os.DirEntry[str]]:
            for entry in self.inner:
                time.sleep(0.01)
                yield entry

        def close(self) -> None:
            self.inner.close()

    def scandir(path: Any = ".") -> Any:
        return Slow(path) if str(path).startswith(str(root)) else real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    return root


def runner_for(tmp_path: Path, sensor: dict[str, Any]) -> LocalRunner:
    doc = yaml.safe_load(
        yaml.safe_dump(
            {
                "metadata": {"name": "wait"},
                "spec": {"tasks": [{"name": "wait", "image": "busybox", "sensor": sensor}]},
            }
        )
    )
    _, plan, issues = validate_document(doc)
    assert plan is not None, issues
    ctx = RunContext(
        run_id="manual__test",
        logical_date=LOGICAL,
        interval=DataInterval(LOGICAL, LOGICAL),
        params={},
        pipeline="wait",
    )
    return LocalRunner(plan, ctx, workdir=tmp_path / "work", cwd=str(tmp_path))


@pytest.mark.timeout(25)
def test_a_slow_glob_times_out_on_time(tmp_path: Path, slow_tree: Path) -> None:
    sensor = {"kind": "file", "path": f"{slow_tree}/*/*/nothing", "timeout": "1s"}
    runner = runner_for(tmp_path, sensor)
    started = time.monotonic()
    assert runner.execute() is RunPhase.FAILED
    took = time.monotonic() - started
    assert took < 8, f"the 1 s sensor timeout took {took:.1f} s"
    inst = runner.engine.instances["wait"]
    assert inst.message == "sensor timed out"


@pytest.mark.timeout(25)
def test_ctrl_c_during_a_slow_glob_stops_the_run(tmp_path: Path, slow_tree: Path) -> None:
    sensor = {"kind": "file", "path": f"{slow_tree}/*/*/nothing", "timeout": "60s"}
    runner = runner_for(tmp_path, sensor)
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    started = time.monotonic()
    try:
        runner.execute()
    finally:
        timer.cancel()
    assert runner.interrupted is signal.SIGINT
    assert time.monotonic() - started < 8


def test_the_walk_stops_at_its_deadline(slow_tree: Path) -> None:
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        file_met(f"{slow_tree}/*/*/nothing", time.monotonic() + 0.3)
    assert time.monotonic() - started < 2


def test_a_match_is_found_without_walking_everything(slow_tree: Path) -> None:
    assert file_met(f"{slow_tree}/d*/f1", time.monotonic() + 10)
