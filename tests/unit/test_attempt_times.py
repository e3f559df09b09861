"""Each attempt records its own start: one whose pod never started records none."""

from __future__ import annotations

from datetime import timedelta

from helpers_engine import T0, context, plan, task

from kascade.api.runs import AttemptReason
from kascade.engine.decisions import Result
from kascade.engine.run import RunEngine


def test_an_attempt_that_never_started_has_no_start_of_another_attempts() -> None:
    engine = RunEngine(plan([task("t", retries=1, retryDelay="0s")]), context())
    (first,) = engine.start(T0).launches
    engine.started(first.key, 1, T0 + timedelta(seconds=1))
    failed = engine.finished(first.key, 1, Result(1), T0 + timedelta(seconds=5))
    (second,) = failed.launches or engine.tick(T0 + timedelta(seconds=5)).launches
    refused = Result(None, reason=AttemptReason.START_TIMEOUT, message="never started")
    engine.finished(second.key, 2, refused, T0 + timedelta(seconds=40))
    one, two = engine.instances["t"].attempts
    assert one.start == T0 + timedelta(seconds=1)
    assert two.start is None  # was the first attempt's start
