"""The instance state table: Airflow's task life cycle, enforced, with counts kept as it moves."""

from __future__ import annotations

import pytest
from helpers_engine import plan, task

from kascade.api.runs import TaskState
from kascade.controller.status import task_event
from kascade.engine.instances import TERMINAL, TRANSITIONS, IllegalTransition, InstanceTable

S = TaskState


def test_every_state_has_its_moves_and_a_finished_one_is_only_taken_back() -> None:
    assert set(TRANSITIONS) == set(TaskState)
    for state in TERMINAL:
        assert TRANSITIONS[state] == {S.NONE}
    assert S.SCHEDULED not in TRANSITIONS[S.RUNNING]  # a retry goes through up_for_retry


def test_the_table_refuses_a_move_the_life_cycle_does_not_have() -> None:
    table = InstanceTable(plan([task("a"), task("b", pool="db")]))
    a = table.instances["a"]
    table.move(a, S.SCHEDULED)
    table.move(a, S.QUEUED)
    table.move(a, S.RUNNING)
    table.move(a, S.SUCCESS)
    with pytest.raises(IllegalTransition, match="a: success -> running"):
        table.move(a, S.RUNNING)
    assert table.unsettled == 1  # b is not settled yet
    b = table.instances["b"]
    table.move(b, S.SCHEDULED)
    assert table.scheduled == {None: 0, "db": 1}
    table.move(b, S.SKIPPED)
    assert table.scheduled == {None: 0, "db": 0} and table.unsettled == 0
    assert [k for k, _ in table.drain_changes()] == ["a"] * 4 + ["b"] * 2
    assert table.drain_changes() == []


def test_task_events_say_what_changed_and_warn_on_failures() -> None:
    assert task_event("t", S.SCHEDULED, None) is None
    assert task_event("t", S.RUNNING, None) == ("Normal", "TaskRunning", "t is running")
    assert task_event("t[2]", S.UP_FOR_RETRY, "exit code 1") == (
        "Warning",
        "TaskUpForRetry",
        "t[2] is up_for_retry: exit code 1",
    )
