"""YAML is bounded while it is loaded, and renders are bounded as they grow (issue 13).

An 815-byte file of nested aliases rendered to 569 MB before the 1 MiB string limit
fired; 100,000 nested ``[`` crashed libyaml's composer (a segfault, in a subprocess
here); a task's fields were limited one string at a time, not in total.
"""

from __future__ import annotations

import subprocess
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
import yaml

from kascade.engine import expressions
from kascade.engine.validation import load_documents

OPERATOR = Path(__file__).resolve().parents[2] / "operator"


def alias_bomb(levels: int, width: int = 4) -> str:
    lines = ['a0: &a0 ["xxxxxxxxxx"]']
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * width) + "]")
    body = "\n".join("        " + line for line in lines)
    return (
        "metadata: {name: bomb}\nspec:\n  params:\n    p:\n      type: object\n"
        f"      default:\n{body}\n"
        "  tasks: [{name: t, image: busybox, command: [echo, '{{ params.p }}']}]\n"
    )


def test_an_alias_bomb_is_refused_at_load() -> None:
    text = alias_bomb(20)
    assert len(text) < 1200
    with pytest.raises(yaml.YAMLError, match="YAML aliases grow this document by more than 16 MiB"):
        load_documents(text)


def test_aliases_that_share_reasonably_are_fine() -> None:
    shared = "defaults: &d {image: busybox, env: [{name: A, value: b}], command: ['true']}\n"
    tasks = "\n".join(f"    - {{<<: *d, name: t{i}}}" for i in range(2000))
    [doc] = load_documents(
        f"x-shared:\n  {shared}metadata: {{name: ok}}\nspec:\n  tasks:\n{tasks}\n"
    )
    assert len(doc["spec"]["tasks"]) == 2000


def test_a_recursive_alias_is_refused() -> None:
    with pytest.raises(yaml.YAMLError, match="recursive alias"):
        load_documents("metadata: {name: r}\nspec: &s {tasks: [*s]}\n")


@pytest.mark.parametrize("depth", [101, 100_000])
def test_deep_nesting_is_refused_before_libyaml_composes_it(depth: int) -> None:
    """Run in a subprocess: on the old code 100,000 levels kill the interpreter."""
    code = (
        "import yaml\n"
        "from kascade.engine.validation import load_documents\n"
        f"text = 'metadata: {{name: d}}\\nx: ' + '[' * {depth} + ']' * {depth}\n"
        "try:\n    load_documents(text)\nexcept yaml.YAMLError as exc:\n    print(exc)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(OPERATOR), "PATH": "/usr/bin:/bin"},
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-500:]
    assert "nested deeper than 100 levels" in proc.stdout


def test_nesting_up_to_the_bound_loads() -> None:
    [doc] = load_documents("metadata: {name: d}\nx: " + "[" * 99 + "]" * 99)
    assert isinstance(doc["x"], list)


# -- renders ------------------------------------------------------------------------------------
def _peak_while(fn: Any) -> int:
    tracemalloc.start()
    try:
        fn()
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak


def test_a_shared_value_is_not_written_out_whole_before_it_is_refused() -> None:
    """4**11 shared copies of a 10-character string are 58 MB of JSON; rendering stops
    after the 1 MiB it may write."""
    value: Any = ["xxxxxxxxxx"]
    for _ in range(11):
        value = [value, value, value, value]

    def render() -> None:
        with pytest.raises(expressions.ExpressionError, match="longer than"):
            expressions.evaluate("p | tojson", {"p": value})

    assert _peak_while(render) < 16 << 20


def test_a_tasks_rendered_fields_are_bounded_in_total(tmp_path: Path) -> None:
    """Three env values of 600,000 characters each pass the per-string limit, not the
    task's: the attempt fails before any process starts."""
    from click.testing import CliRunner

    from kascade.cli.main import cli

    env = ", ".join(f'{{name: V{i}, value: "{{{{ params.big }}}}"}}' for i in range(3))
    path = tmp_path / "wide.yaml"
    path.write_text(
        "metadata: {name: wide}\nspec:\n  params:\n"
        f"    big: {{type: string, default: {'y' * 600_000}}}\n"
        f"  tasks:\n    - {{name: t, image: busybox, command: ['true'], env: [{env}]}}\n"
    )
    result = CliRunner(env={"KASCADE_HOME": str(tmp_path / "home")}).invoke(
        cli, ["run", str(path)], catch_exceptions=False
    )
    assert result.exit_code == 1, result.output
    assert "rendered fields are longer than 1048576 characters in total" in result.output
