"""maxActiveTasks across the runs of one pipeline (Airflow's max_active_tasks)."""

from __future__ import annotations

from helpers_engine import OK, T0, context, plan, task

from kascade.engine.pools import PoolLedger
from kascade.engine.run import RunEngine
from kascade.engine.slots import RunSlots, SharedSlots

WIDE = plan([task(f"t{i}", pool="p") for i in range(3)], maxActiveTasks=2)


def _engines(shared: SharedSlots, n: int) -> list[RunEngine]:
    return [RunEngine(WIDE, context(), slots=shared.for_run(2)) for _ in range(n)]


def test_runs_of_one_pipeline_share_max_active_tasks() -> None:
    freed: list[int] = []
    shared = SharedSlots(on_give=lambda: freed.append(1))
    first, second = _engines(shared, 2)
    launched_first = first.start(T0).launches
    launched_second = second.start(T0).launches
    assert len(launched_first) == 2 and launched_second == []
    assert shared.used == 2

    done = first.finished(launched_first[0].key, 1, OK, T0)
    assert freed, "a freed slot must be announced, so other runs get a tick"
    # The run that freed the slot takes it back first (its own queue is admitted in
    # the same step); the other run's tick then finds the limit reached.
    assert len(done.launches) == 1 and shared.used == 2
    assert second.tick(T0).launches == []

    first.finished(launched_first[1].key, 1, OK, T0)
    first.finished(done.launches[0].key, 1, OK, T0)
    assert first.phase.value == "success"
    assert len(second.tick(T0).launches) == 2


def test_a_run_counts_its_own_tasks_without_a_shared_counter() -> None:
    solo = RunEngine(WIDE, context(), slots=RunSlots(2))
    assert len(solo.start(T0).launches) == 2


def test_release_all_gives_back_pool_and_task_slots() -> None:
    shared = SharedSlots()
    pools = PoolLedger({"p": 5})
    (eng,) = [RunEngine(WIDE, context(), pools=pools, slots=shared.for_run(2))]
    eng.start(T0)
    assert shared.used == 2 and pools.used == {"p": 2}
    eng.release_all()
    eng.release_all()  # idempotent: a dropped driver may be dropped twice
    assert shared.used == 0 and pools.used == {"p": 0}
