"""What an attempt leaves to read is read within bounds, and reported per attempt (issue 13).

* An outputs file was read whole before the 4 KiB check (300 MB → 612 MB RSS); at most
  the limit and one byte are read now, and only from a regular file.
* A failing task's log tail could be one 8 KB line; each line is cut.
* A retried task's duration counted from its first attempt's start (a 5 s second attempt
  reported 11 s); it is the last attempt's, in the engine's record (and so in the local
  table, the history and the TaskRun's attempts).
"""

from __future__ import annotations

import os
import tracemalloc
from datetime import timedelta
from pathlib import Path

import pytest
from helpers_engine import FAIL, OK, T0, plan, task

from kascade.api.runs import AttemptReason
from kascade.engine.context import RunContext
from kascade.engine.run import RunEngine
from kascade.engine.schedule import DataInterval
from kascade.local import processes, report
from kascade.local.attempts import read_outputs


def test_a_huge_outputs_file_is_not_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "outputs"
    with open(path, "wb") as f:
        f.truncate(50_000_000)  # 50 MB of zeros, sparse: cheap to make
    tracemalloc.start()
    try:
        result = read_outputs(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000, f"{peak} bytes held to read the outputs"
    assert result.reason is AttemptReason.OUTPUTS_TOO_LARGE
    assert result.message is not None and "outputs are 50000000 bytes" in result.message


@pytest.mark.timeout(10)
def test_an_outputs_file_made_a_link_to_an_endless_device_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "outputs"
    os.symlink("/dev/zero", path)
    result = read_outputs(path)
    assert result.reason is AttemptReason.BAD_OUTPUTS
    assert result.message is not None and "not a regular file" in result.message


@pytest.mark.timeout(10)
def test_an_outputs_fifo_does_not_block(tmp_path: Path) -> None:
    path = tmp_path / "outputs"
    os.mkfifo(path)
    result = read_outputs(path)
    assert result.reason is AttemptReason.BAD_OUTPUTS


def test_outputs_at_the_limit_are_read(tmp_path: Path) -> None:
    path = tmp_path / "outputs"
    path.write_text("x=" + "y" * 4094)
    assert read_outputs(path).outputs == {"x": "y" * 4094}


def test_log_tail_lines_are_cut(tmp_path: Path) -> None:
    log = tmp_path / "attempt-1.log"
    log.write_text("start\n" + "z" * 8000 + "\nend\n")
    lines = processes.tail(log)
    assert lines[-1] == "end"
    assert all(len(line) < 400 for line in lines)
    assert lines[-2].startswith("z" * 300) and lines[-2].endswith("more characters)")


def test_a_retried_tasks_duration_is_its_last_attempts() -> None:
    p = plan([task("flaky", retries=1, retryDelay="0s")])
    ctx = RunContext(
        run_id="r", logical_date=T0, interval=DataInterval(T0, T0), params={}, pipeline="p"
    )
    engine = RunEngine(p, ctx)
    first = engine.start(T0).launches[0]
    engine.started(first.key, first.attempt, T0)
    at = T0 + timedelta(seconds=6)
    out = engine.finished(first.key, first.attempt, FAIL, at)
    second = out.launches[0] if out.launches else engine.tick(at).launches[0]
    assert second.attempt == 2
    engine.started(second.key, second.attempt, at)
    engine.finished(second.key, second.attempt, OK, at + timedelta(seconds=5))
    inst = engine.instances["flaky"]
    assert [a.start for a in inst.attempts] == [T0, at]
    assert report.instance_duration(inst) == 5.0
    assert (
        report.run_json(engine, at + timedelta(seconds=5))["tasks"]["flaky"]["durationSeconds"]
        == 5.0
    )
