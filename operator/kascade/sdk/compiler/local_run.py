"""Python DAG files for the local commands: ``kascade run dags/x.py --dag ID`` and ``dag.test()``.

The DAG is compiled for the ``local`` target (this interpreter runs each
Python task; no image, no bundle) and then runs exactly like a YAML pipeline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kascade.api.resources import Pipeline
from kascade.engine.plan import Plan
from kascade.engine.validation import validate_document
from kascade.sdk.compiler.project import Options, compile_paths
from kascade.sdk.dag import DAG
from kascade.sdk.naming import pipeline_name


class PythonDagError(Exception):
    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        super().__init__("\n".join(lines))


def _matches(dag: DAG, wanted: str) -> bool:
    return wanted in (dag.dag_id, pipeline_name(dag.dag_id))


def load_python_plan(path: Path, wanted: str | None) -> tuple[Pipeline, Plan]:
    """The one DAG of ``path`` to run (``wanted`` is a dag_id or its Pipeline name)."""
    result = compile_paths([path], Options(target="local"))
    if result.problems:
        raise PythonDagError([str(p) for p in result.problems])
    dags = result.dags
    if wanted is not None:
        dags = [d for d in dags if _matches(d.dag, wanted)]
        if not dags:
            known = ", ".join(d.dag.dag_id for d in result.dags) or "none"
            raise PythonDagError([f"no DAG {wanted!r} in {path} (found: {known})"])
    if not dags:
        raise PythonDagError([f"{path} builds no DAG"])
    if len(dags) > 1:
        known = ", ".join(d.dag.dag_id for d in dags)
        raise PythonDagError([f"several DAGs ({known}): choose one with --dag ID"])
    pipeline, plan, issues = validate_document(dags[0].pipeline, result.task_templates)
    if issues or pipeline is None or plan is None:
        raise PythonDagError([str(i) for i in issues] or ["the pipeline is invalid"])
    return pipeline, plan


def test_dag(dag: DAG, logical_date: Any = None, run_conf: dict[str, Any] | None = None) -> str:
    """``dag.test()``: run the DAG here, printing progress; returns the run's phase."""
    from kascade.cli.run_local import RunOptions, run_local

    if not dag.fileloc:
        raise PythonDagError([f"DAG {dag.dag_id!r} does not know its file"])
    params = tuple(f"{k}={v}" for k, v in (run_conf or {}).items())
    date = logical_date.isoformat() if hasattr(logical_date, "isoformat") else logical_date
    code = run_local(
        RunOptions(
            file=Path(dag.fileloc), params=params, logical_date=date, pipeline_name=dag.dag_id
        )
    )
    return "success" if code == 0 else "failed"
