"""The long chaos test (``make bench``): 42 runs (7 of each chaos pipeline) while the
operator is SIGKILLed 12 times at random (up 2-25 s, down 0-5 s), as in issue 14's
report; tests/e2e/test_crash_safety.py runs the short one in CI."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e import chaos
from e2e.operator_support import Kascade, OperatorProcess, make_namespace

from .test_operator_bench import Api, cluster, kubeconfig_path

pytestmark = pytest.mark.bench
__all__ = ["cluster"]  # the fixture, shared with the other operator benchmarks


@pytest.fixture
def env(cluster: Api, tmp_path: Path) -> Iterator[Kascade]:
    ns = make_namespace(cluster, "bench-chaos", "restricted")
    k = Kascade(cluster.api, ns)
    k.operator = OperatorProcess(kubeconfig_path(), [ns], tmp_path / "operator.log")
    k.operator.start()
    try:
        yield k
    finally:
        k.operator.kill()
        print(f"(operator log: {k.operator.log})")
        cluster.core.delete_namespace(ns, propagation_policy="Background")


@pytest.mark.timeout(3600)
def test_42_runs_end_right_through_12_sigkills(env: Kascade) -> None:
    seed = int(os.environ.get("KASCADE_CHAOS_SEED", "0")) or None
    result = chaos.chaos(
        env,
        runs_per_pipeline=7,
        kills=12,
        uptime=(2.0, 25.0),
        downtime=(0.0, 5.0),
        spread=120.0,
        timeout=3000,
        seed=seed,
    )
    print(
        f"\nchaos seed {result.seed}: {len(result.runs)} runs, {len(result.kills)} SIGKILLs "
        f"(uptime, downtime): {[(round(u, 1), round(d, 1)) for u, d in result.kills]}; "
        f"{len(result.pods)} pods, {sum(len(u) for u in result.pods.values())} pod creations"
    )
    found = chaos.problems(env, result)
    assert found == [], "\n".join(found)
