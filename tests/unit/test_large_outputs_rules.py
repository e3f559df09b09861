"""Outputs beyond 4 KiB: which values go to the object store, and how the engine reads them.

The rules are the engine's (``engine/outputs.py``, ``engine/rendering.StoredOutput``):
the largest values move to the store until the rest fits in a termination message; a
reference takes their place; a template, a ``when`` or an ``expand`` that reaches one
reads it (once) through the driver's store, only from under its own pipeline; a task
cannot forge a reference. The drivers' I/O is tested against a real S3 server in
tests/integration/test_large_outputs_local.py and tests/e2e/test_features_b_cluster.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from helpers_engine import Recorder, context, plan, scripted, task

from kascade.api.protocol import OUTPUTS_LIMIT_BYTES
from kascade.api.runs import TaskState
from kascade.engine import outputs
from kascade.engine.decisions import Result
from kascade.engine.outputs import OutputRef, OutputsError
from kascade.engine.run import RunEngine

BIG = "x" * 100_000


class MemoryStore:
    """The driver's store, in memory: key -> bytes (tests of the engine's rules only)."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.fetches: list[str] = []

    def put(self, key: str, data: bytes) -> OutputRef:
        self.objects[key] = data
        return outputs.reference(key, data)

    def fetch(self, ref: OutputRef) -> Any:
        self.fetches.append(ref.key)
        return outputs.stored(self.objects[ref.key], ref)


def test_split_moves_the_largest_values_until_the_rest_fits() -> None:
    given = {"big": BIG, "mid": "y" * 3000, "small": 1, "branch": "z" * 10}
    inline, moved = outputs.split_outputs(given)
    assert set(moved) == {"big"}  # the rest fits in 4 KiB
    assert set(inline) == {"mid", "small", "branch"}
    huge_branch = {"big": BIG, "branch": "z" * 5000, "n": 1}
    assert set(outputs.split_outputs(huge_branch)[0]) == {"branch"}  # the engine reads it
    assert json.loads(moved["big"]) == BIG
    assert outputs.split_outputs({"a": 1}) == ({"a": 1}, {})
    small = {f"k{i}": "v" * 100 for i in range(60)}  # 6 KiB of small values
    inline, moved = outputs.split_outputs(small)
    assert len(outputs.encoded(inline)) <= OUTPUTS_LIMIT_BYTES and moved


def test_keys_are_per_run_attempt_and_output_under_the_pipeline() -> None:
    key = outputs.object_key("ns", "etl", "manual__2024-01-01T00:00:00+00:00", "t[3]", 2, "data")
    assert key == "ns/etl/manual__2024-01-01T00_00_00_00_00/t_3_/2/data.json"
    assert key.startswith(outputs.pipeline_prefix("ns", "etl"))


def test_a_task_cannot_write_a_reference_itself() -> None:
    forged = json.dumps({"x": {outputs.REF_KEY: {"key": "other/p/r/t/1/x.json"}}})
    with pytest.raises(OutputsError, match=r"kascade\.io/ref is reserved"):
        outputs.parse_outputs(forged)
    with pytest.raises(OutputsError, match="over the 4096-byte limit"):
        outputs.parse_outputs(json.dumps({"x": BIG}))
    assert outputs.parse_outputs(json.dumps({"x": BIG}), limit=1 << 20) == {"x": BIG}
    with pytest.raises(OutputsError, match="over the 1000-byte cap"):
        outputs.parse_outputs(json.dumps({"x": BIG}), limit=1000)


def _stored_run(store: MemoryStore | None, key: str, downstream: dict[str, Any]) -> RunEngine:
    ref = outputs.reference(key, outputs.encoded(BIG))
    if store is not None:
        ref = store.put(key, outputs.encoded(BIG))
    p = plan([task("a"), downstream])
    result = Result(0, outputs={"rows": 3, "data": ref.wire()})
    eng = RunEngine(p, context(), values=store)
    Recorder(eng, scripted({"a": result})).run()
    return eng


def test_templates_and_when_read_a_stored_output_once_on_demand() -> None:
    store = MemoryStore()
    down = task(
        "b",
        "a",
        command=["echo", "{{ tasks.a.outputs.data | length }}", "{{ tasks.a.outputs.rows }}"],
        when="tasks.a.outputs.data | length > 10",
    )
    eng = _stored_run(store, "default/p/manual__1/a/1/data.json", down)
    assert eng.states()["b"] is TaskState.SUCCESS
    assert store.fetches == ["default/p/manual__1/a/1/data.json"]  # read once, for both uses
    assert eng.instances["a"].outputs["data"] == {
        outputs.REF_KEY: {
            "key": "default/p/manual__1/a/1/data.json",
            "size": len(BIG) + 2,
            "sha256": outputs.reference("k", outputs.encoded(BIG)).sha256,
        }
    }  # status keeps the reference, never the value


def test_a_reference_outside_the_pipeline_or_without_a_store_fails_the_attempt() -> None:
    down = task("b", "a", command=["echo", "{{ tasks.a.outputs.data }}"], retries=0)
    elsewhere = _stored_run(MemoryStore(), "other-ns/p/r/a/1/data.json", down)
    assert elsewhere.states()["b"] is TaskState.FAILED
    assert "is not an output of this pipeline" in (elsewhere.instances["b"].message or "")
    nowhere = _stored_run(None, "default/p/manual__1/a/1/data.json", down)
    assert "no object store is configured here" in (nowhere.instances["b"].message or "")


def test_a_changed_object_is_refused() -> None:
    store = MemoryStore()
    ref = store.put("p/p/r/a/1/x.json", b'"one"')
    store.objects[ref.key] = b'"two"'
    with pytest.raises(OutputsError, match="changed since it was written"):
        store.fetch(ref)
