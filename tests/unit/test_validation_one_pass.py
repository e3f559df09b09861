"""Every problem of a manifest in one pass, with the hint the README promises (issue 13).

A ``triggerRule`` typo used to hide an unknown ``dependsOn`` and a bad duration in the
same file; ``--param typo=x`` was taken silently; a 20,000-task cycle was one 189 KB
line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from kascade.cli.main import cli
from kascade.engine.validation import validate_document

ROUNDS = """
apiVersion: kascade.io/v1alpha1
kind: Pipeline
metadata: {name: rounds}
spec:
  params:
    days: {type: integer, default: abc}
  tasks:
    - {name: extract, image: busybox, command: ["true"]}
    - name: load
      image: busybox
      command: ["true"]
      triggerRule: all_sucess
      dependsOn: [lod]
      retryDelay: 5 minutes
      dependOn: [extract]
"""


def messages(doc: dict[str, Any]) -> list[str]:
    return [str(issue) for issue in validate_document(doc)[2]]


def test_every_problem_in_one_pass_with_hints() -> None:
    found = messages(yaml.safe_load(ROUNDS))
    assert any(
        m.startswith("spec.tasks[1].triggerRule: Input should be")
        and m.endswith("(did you mean all_success, one_success?)")
        for m in found
    ), found
    assert "spec.tasks[1].dependOn: unknown field (did you mean dependsOn?)" in found
    assert "spec.tasks[1].dependsOn[0]: unknown task or group 'lod' (did you mean load?)" in found
    assert any(
        m.startswith("spec.tasks[1].retryDelay: invalid duration '5 minutes'") for m in found
    )
    assert "spec.params.days.default: param 'days' must be of type integer, got 'abc'" in found, (
        found
    )
    assert len(found) == 5, found


def test_a_required_field_gone_wrong_still_reports_the_schema_problems() -> None:
    doc = yaml.safe_load(ROUNDS)
    doc["spec"]["tasks"][0]["name"] = "Not.Valid"
    found = messages(doc)
    assert found and all(m.startswith("spec.") for m in found)
    assert any("spec.tasks[0].name" in m for m in found)


def test_a_long_cycle_is_summarised() -> None:
    n = 20_000
    tasks = [
        {"name": f"t{i}", "image": "busybox", "command": ["true"], "dependsOn": [f"t{i - 1}"]}
        for i in range(1, n)
    ]
    tasks.insert(
        0, {"name": "t0", "image": "busybox", "command": ["true"], "dependsOn": [f"t{n - 1}"]}
    )
    [message] = messages({"metadata": {"name": "loop"}, "spec": {"tasks": tasks}})
    assert len(message) < 400, len(message)
    assert message.startswith("spec.tasks[0].dependsOn: dependency cycle: t0 -> t1 -> ")
    assert message.endswith("-> t0 (20000 tasks)")


@pytest.fixture
def pipeline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("KASCADE_HOME", str(tmp_path / "home"))
    path = tmp_path / "p.yaml"
    path.write_text(
        """
metadata: {name: p}
spec:
  params:
    region: {type: string, default: eu}
    days: {type: integer, default: 1}
  tasks:
    - {name: t, image: busybox, command: [echo, "{{ params.region }}"]}
"""
    )
    return path


def test_unknown_param_names_are_refused_with_a_hint(pipeline: Path) -> None:
    result = CliRunner().invoke(
        cli, ["run", str(pipeline), "--param", "regoin=us", "--param", "dayz=2"]
    )
    assert result.exit_code == 2
    assert (
        "params.regoin: unknown param 'regoin' (did you mean region?); declared: region, days"
        in (result.stderr)
    )
    assert "params.dayz: unknown param 'dayz' (did you mean days?)" in result.stderr


def test_a_pipeline_without_params_takes_only_names_its_templates_read(tmp_path: Path) -> None:
    path = tmp_path / "np.yaml"
    path.write_text(
        "metadata: {name: np}\nspec:\n  tasks:\n"
        '    - {name: t, image: busybox, command: [echo, "{{ params.who }}"]}\n'
    )
    runner = CliRunner(env={"KASCADE_HOME": str(tmp_path / "home")})
    ok = runner.invoke(cli, ["run", str(path), "--param", "who=x", "-q"])
    assert ok.exit_code == 0, ok.output
    typo = runner.invoke(cli, ["run", str(path), "--param", "hwo=x", "-q"])
    assert typo.exit_code == 2
    assert "unknown param 'hwo' (did you mean who?)" in typo.stderr
