"""Pipelines for the differential tier: random DAGs whose outcome does not depend on timing.

Each generated pipeline mixes trigger rules, failing and flaky tasks (with retries),
branches, short circuits and mapped tasks; every task writes rendered macros to its
outputs. A candidate is kept only if the engine, simulated under many random orders of
task completion, always ends the same way: then the local runner and the cluster, whose
timings differ, must agree on it exactly.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from kascade.api.pipeline import PipelineSpec, TriggerRule
from kascade.engine.compile import compile_or_raise
from kascade.engine.context import RunContext
from kascade.engine.decisions import Launch, Result
from kascade.engine.run import RunEngine
from kascade.engine.schedule import DataInterval
from kascade.engine.simulate import simulate

MACROS = (
    "ds={{ ds }} ts={{ ts_nodash_with_tz }} ld={{ logical_date }} start={{ data_interval_start }}"
)
RULES = [r.value for r in TriggerRule]
T0 = datetime(2024, 3, 4, tzinfo=UTC)


def _script(kind: str, arg: Any) -> str:
    lines = [f'echo "m={MACROS} try={{{{ task.try_number }}}}" >> "$KASCADE_OUTPUTS"']
    if kind == "fail":
        lines.append("exit 3")
    elif kind == "flaky":
        lines.append(f"[ {{{{ task.try_number }}}} -gt {arg} ] || exit 4")
    elif kind == "branch":
        lines.append(f'echo "branch={arg}" >> "$KASCADE_OUTPUTS"')
    elif kind == "short":
        lines.append(f'echo "condition={str(arg).lower()}" >> "$KASCADE_OUTPUTS"')
    elif kind == "mapped":
        lines.append('echo "item={{ item }}" >> "$KASCADE_OUTPUTS"')
    return "\n".join(lines) + "\n"


def candidate(rng: random.Random, name: str, size: int) -> dict[str, Any]:
    tasks: list[dict[str, Any]] = []
    for i in range(size):
        task: dict[str, Any] = {"name": f"t{i}"}
        if i:
            ups = rng.sample(range(i), rng.randint(1, min(2, i)))
            task["dependsOn"] = [f"t{u}" for u in sorted(ups)]
            task["triggerRule"] = rng.choice(RULES)
        kind = rng.choices(
            ["ok", "fail", "flaky", "branch", "short", "mapped"], [5, 1, 2, 1, 1, 1]
        )[0]
        arg: Any = None
        if kind == "flaky":
            arg = rng.randint(1, 2)
            task["retries"] = arg + rng.randint(-1, 1)
            task["retryDelay"] = "1s"
        elif kind == "short":
            arg = rng.random() < 0.5
            task["shortCircuit"] = True
        elif kind == "mapped":
            task["expand"] = {"items": ["a", "b"][: rng.randint(1, 2)]}
        elif kind == "branch":
            task["branch"] = True
        task["script"] = _script(kind, arg)
        task["_kind"] = (kind, arg)
        tasks.append(task)
    # A branch chooses one of its direct downstream tasks (or nothing, without any).
    for i, task in enumerate(tasks):
        if task["_kind"][0] == "branch":
            down = [t["name"] for t in tasks[i + 1 :] if f"t{i}" in t.get("dependsOn", [])]
            choice = rng.choice(down) if down else "t0"
            task["script"] = _script("branch", choice)
            task["_kind"] = ("branch", choice)
    return {
        "apiVersion": "kascade.io/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": name},
        "spec": {"defaults": {"image": "busybox:1.36"}, "tasks": tasks},
    }


def manifest(doc: dict[str, Any]) -> dict[str, Any]:
    """The pipeline without the generator's notes."""
    tasks = [{k: v for k, v in t.items() if k != "_kind"} for t in doc["spec"]["tasks"]]
    return {**doc, "spec": {**doc["spec"], "tasks": tasks}}


def _outcome(doc: dict[str, Any]) -> Any:
    kinds = {t["name"]: t["_kind"] for t in doc["spec"]["tasks"]}

    def result(launch: Launch) -> Result:
        kind, arg = kinds[launch.task_id]
        if kind == "fail" or (kind == "flaky" and launch.attempt <= arg):
            return Result(3)
        if kind == "branch":
            return Result(0, outputs={"branch": arg})
        if kind == "short":
            return Result(0, outputs={"condition": arg})
        return Result(0, outputs={})

    return result


def outcomes(doc: dict[str, Any], orders: int, seed: int) -> set[tuple[Any, ...]]:
    """Every (phase, states, attempts) the engine reaches under ``orders`` random timings."""
    plan = compile_or_raise(PipelineSpec.model_validate(manifest(doc)["spec"]), "p")
    rng = random.Random(seed)
    seen = set()
    for _ in range(orders):
        ctx = RunContext("manual__x", T0, DataInterval(T0 - timedelta(days=1), T0), {}, "p")
        eng = RunEngine(plan, ctx)
        trace = simulate(
            eng,
            _outcome(doc),
            start=T0,
            duration=lambda _launch: timedelta(milliseconds=rng.randint(1, 5000)),
        )
        states = tuple(sorted((k, s.value) for k, s in eng.states().items()))
        attempts = tuple(sorted((k, i.attempt) for k, i in eng.instances.items()))
        seen.add((trace.phase, states, attempts))
    return seen


def generated(count: int, seed: int = 8, size: int = 7) -> list[dict[str, Any]]:
    """``count`` pipelines whose outcome does not depend on timing, each with a failure,
    a retry, a branch, a short circuit or a mapped task somewhere."""
    rng = random.Random(seed)
    found: list[dict[str, Any]] = []
    tries = 0
    while len(found) < count and tries < count * 50:
        tries += 1
        doc = candidate(rng, f"diff-{seed}-{len(found)}", size)
        kinds = {t["_kind"][0] for t in doc["spec"]["tasks"]}
        if kinds <= {"ok"}:
            continue
        if len(outcomes(doc, orders=12, seed=tries)) == 1:
            found.append(doc)
    return found
