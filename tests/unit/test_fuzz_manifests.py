"""Fuzzing over manifests: any input gets issues or a plan, never an exception (issue 13).

The strategies (tests/manifest_strategies.py) draw hostile manifests; the seeds are
fixed (``derandomize``) and the example counts small, so a run is reproducible and
takes seconds. A failure prints the manifest that broke the rule.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kascade.api.runs import RunPhase
from kascade.cli.main import cli
from kascade.engine.context import RunContext
from kascade.engine.decisions import Launch, Result
from kascade.engine.run import RunEngine
from kascade.engine.schedule import DataInterval
from kascade.engine.simulate import simulate
from kascade.engine.validation import load_documents, validate_document
from manifest_strategies import manifests, output_values, valid_manifests

SEEDED = settings(
    max_examples=150,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@settings(SEEDED, max_examples=300)
@given(doc=manifests())
def test_validation_answers_every_manifest(doc: dict[str, Any]) -> None:
    pipeline, plan, issues = validate_document(doc)
    assert (plan is None) == bool(issues), issues
    for issue in issues:
        assert issue.path and issue.message
        assert len(str(issue)) < 2000, str(issue)[:300]
    if plan is not None:
        assert pipeline is not None and pipeline.metadata.name


@SEEDED
@given(
    doc=st.one_of(valid_manifests(), manifests()),
    params=st.dictionaries(st.sampled_from(["s", "x"]), st.text()),
    rows=output_values(),
)
def test_every_valid_plan_runs_to_an_end(
    doc: dict[str, Any], params: dict[str, Any], rows: Any
) -> None:
    """Rendering, filters, mapping and retries on whatever the plan holds and whatever
    the tasks output: the run ends, and nothing raises (a value a filter cannot take
    fails its task, not the engine)."""
    _, plan, _issues = validate_document(doc)
    if plan is None:
        return

    def outcome(launch: Launch) -> Result:
        if launch.attempt % 2:  # odd attempts fail: retries and trigger rules get exercised
            return Result(1, message="boom")
        return Result(0, outputs={"rows": rows, "branch": "t1", "condition": True})

    ctx = RunContext(
        run_id="manual__fuzz",
        logical_date=T0,
        interval=DataInterval(T0 - timedelta(days=1), T0),
        params={**{name: p.default for name, p in (plan.spec.params or {}).items()}, **params},
        pipeline=plan.name,
    )
    engine = RunEngine(plan, ctx)
    trace = simulate(engine, outcome, start=T0, max_events=20_000)
    assert trace.phase in (RunPhase.SUCCESS, RunPhase.FAILED)


@settings(
    max_examples=40,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(doc=manifests())
def test_kascade_validate_answers_every_file(doc: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.yaml"
        path.write_text(yaml.safe_dump(doc, allow_unicode=True))
        result = CliRunner().invoke(cli, ["validate", str(path)], catch_exceptions=False)
    assert result.exit_code in (0, 1), result.output


YAML_PIECES = st.sampled_from(
    ["a: &x [1, 2]\n", "b: *x\n", "c: [*x, *x, *x]\n", "d: &y {k: *x}\n", "e: [*y, *y]\n",
     "f: " + "[" * 150 + "]" * 150 + "\n", "g: .nan\n", "h: 1.0e+999\n", "i: " + "9" * 5000 + "\n",
     "j: !!python/object:os.system x\n", "k: 'unterminated\n", "---\n", "kind: Pipeline\n",
     "l: &r [*r]\n", "m: {{ x }}\n", "\t- bad indent\n", "n: 0x" + "f" * 4000 + "\n"]
)  # fmt: skip


@SEEDED
@given(pieces=st.lists(YAML_PIECES, max_size=8))
def test_loading_refuses_with_a_yaml_error_or_loads(pieces: list[str]) -> None:
    import yaml as pyyaml

    try:
        docs = load_documents("".join(pieces), every_kind=True)
    except pyyaml.YAMLError:
        return
    assert all(isinstance(d, dict) for d in docs)
