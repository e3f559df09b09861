"""The long chaos test (``make bench``): 42 runs (7 of each chaos pipeline) while the
operator is SIGKILLed 12 times at random (up 2-25 s, down 0-5 s), as in issue 14's
report; tests/e2e/test_crash_safety.py runs the short one in CI."""

from __future__ import annotations

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
    chaos.chaos_and_check(env, **chaos.LONG)
