"""Property tests: random SDK-built DAGs compile to Pipelines the validator accepts.

Random task kinds (bash, TaskFlow, branch, empty, mapped), random edges (always
forward: the DAG is acyclic), random nesting in task groups (with and without
id prefixes), random trigger rules and retries; every XComArg wires data and an
edge. The compiled plan must hold exactly the SDK's tasks and edges.
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kascade.engine.validation import validate_document
from kascade.sdk import DAG, BashOperator, EmptyOperator, TaskGroup, TriggerRule, task
from kascade.sdk.compiler.pipeline import compile_dag
from kascade.sdk.compiler.targets import in_image

KINDS = ("bash", "python", "empty", "branch", "mapped")


@task
def produce(x: int) -> int:
    return x


@task
def consume(*values: int) -> int:
    return sum(values)


@task.branch
def pick() -> list[str]:
    return []


@st.composite
def shapes(draw: st.DrawFn) -> dict[str, object]:
    n = draw(st.integers(1, 14))
    kinds = [draw(st.sampled_from(KINDS)) for _ in range(n)]
    edges = {
        (i, j)
        for j in range(n)
        for i in draw(st.lists(st.integers(0, max(j - 1, 0)), max_size=3, unique=True))
        if i < j
    }
    groups = [draw(st.sampled_from([None, "g", "g.h", "flat"])) for _ in range(n)]
    rules = [draw(st.sampled_from(list(TriggerRule))) for _ in range(n)]
    retries = [draw(st.one_of(st.none(), st.integers(0, 3))) for _ in range(n)]
    data = [draw(st.booleans()) for _ in range(n)]
    return {
        "n": n,
        "kinds": kinds,
        "edges": edges,
        "groups": groups,
        "rules": rules,
        "retries": retries,
        "data": data,
    }


def build(shape: dict[str, object]) -> DAG:
    n: int = shape["n"]  # type: ignore[assignment]
    kinds: list[str] = shape["kinds"]  # type: ignore[assignment]
    edges: set[tuple[int, int]] = shape["edges"]  # type: ignore[assignment]
    groups: list[str | None] = shape["groups"]  # type: ignore[assignment]
    rules: list[TriggerRule] = shape["rules"]  # type: ignore[assignment]
    retries: list[int | None] = shape["retries"]  # type: ignore[assignment]
    data: list[bool] = shape["data"]  # type: ignore[assignment]
    with DAG("prop", default_args={"retries": 1}) as dag:
        g = TaskGroup("g")
        with g:
            h = TaskGroup("h")
        flat = TaskGroup("flat", prefix_group_id=False)
        where = {None: None, "g": g, "g.h": h, "flat": flat}
        ops = []
        for i in range(n):
            group = where[groups[i]]
            kwargs = {"trigger_rule": rules[i], "task_group": group}
            if retries[i] is not None:
                kwargs["retries"] = retries[i]
            ups = [ops[u] for u, d in sorted(edges) if d == i]
            # A branch needs a downstream task; without one it is a plain task.
            kind = kinds[i]
            if kind == "branch" and not any(u == i for u, _ in edges):
                kind = "empty"
            if kind == "bash":
                refs = " ".join(str(u.output) for u in ups if data[i] and not u.is_mapped)
                op = BashOperator(task_id=f"t{i}", bash_command=f"echo {refs}", **kwargs)
            elif kind == "python":
                args = [u.output for u in ups] if data[i] else []
                op = consume.override(task_id=f"t{i}", **kwargs)(*args).operator
            elif kind == "branch":
                op = pick.override(task_id=f"t{i}", **kwargs)().operator
            elif kind == "mapped":
                op = produce.override(task_id=f"t{i}", **kwargs).expand(x=[1, 2, i]).operator
            else:
                op = EmptyOperator(task_id=f"t{i}", **kwargs)
            for up in ups:
                up >> op
            ops.append(op)
    return dag


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shapes())
def test_random_dags_compile_to_valid_pipelines(shape: dict[str, object]) -> None:
    dag = build(shape)
    target = in_image(Path("/dags/prop.py"), Path("/dags"), "img:1", "/opt/dags", {})
    doc, _ = compile_dag(dag, target)
    pipeline, plan, issues = validate_document(doc)
    assert not issues, [str(i) for i in issues]
    assert plan is not None and pipeline is not None
    assert {t.id for t in plan.tasks} == set(dag.task_dict)
    sdk_edges = {(u, t.task_id) for t in dag.tasks for u in t.upstream_task_ids}
    plan_edges = {
        (plan.tasks[u].id, plan.tasks[d].id)
        for d in range(len(plan.tasks))
        for u in plan.graph.upstream[d]
    }
    assert plan_edges == sdk_edges
    again, _ = compile_dag(build(shape), target)
    assert again == doc
