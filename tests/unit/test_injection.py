"""A run's data never becomes code by accident (issue 13).

``sh -c 'echo hello {{ params.who }}'`` with ``--param "who=x; touch PWNED"`` ran the
injected command. Values are quoted for their language by ``| shquote`` and
``| tojson`` (checked here by running real ``sh`` and ``python3`` on hostile text),
the examples pass them through ``env``, and ``kascade validate`` warns about every
template that puts outside data into code unquoted.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from example_cases import EXAMPLES, EXPECTED
from kascade.cli.main import cli
from kascade.engine import templating
from kascade.engine.validation import validate_document

HOSTILE = [
    "x; touch PWNED",
    "$(touch PWNED)",
    "`touch PWNED`",
    "it's",
    "a'; touch PWNED; echo '",
    '"; touch PWNED; echo "',
    "\\",
    "line\nbreak",
    "",
    "-n",
    "*",
    "ünïcödé ✓",
]
TEXT = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\0"), max_size=40)
FAST = settings(
    max_examples=40,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def _sh(source: str, cwd: Path) -> str:
    return subprocess.run(
        ["sh", "-c", source], capture_output=True, text=True, cwd=cwd, check=True, timeout=30
    ).stdout


def _python(source: str, cwd: Path) -> str:
    return subprocess.run(
        [sys.executable, "-c", source], capture_output=True, text=True, cwd=cwd, check=True
    ).stdout


@pytest.mark.parametrize("value", HOSTILE)
def test_shquote_makes_any_text_one_shell_word(value: str, tmp_path: Path) -> None:
    source = templating.render("printf %s {{ v | shquote }}", {"v": value})
    assert _sh(source, tmp_path) == value
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize("value", HOSTILE)
def test_tojson_makes_any_text_a_python_literal(value: str, tmp_path: Path) -> None:
    source = templating.render("import sys; sys.stdout.write({{ v | tojson }})", {"v": value})
    assert _python(source, tmp_path) == value
    assert not (tmp_path / "PWNED").exists()


@FAST
@given(value=TEXT)
def test_shquote_round_trips_through_sh(
    value: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    cwd = tmp_path_factory.mktemp("sh")
    assert _sh(templating.render("printf %s {{ v | shquote }}", {"v": value}), cwd) == value
    assert list(cwd.iterdir()) == []


def pipeline(task: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "p"},
        "spec": {"tasks": [{"name": "t", "image": "busybox", **task}], **spec},
    }


PARAMS = {
    "who": {"type": "string", "default": "world"},
    "n": {"type": "integer", "default": 1},
    "env": {"type": "string", "enum": ["dev", "prod"], "default": "dev"},
    "wild": {"type": "string", "enum": ["a b", "c;d"], "default": "a b"},
    "o": {"type": "array", "default": ["x"]},
}


def warnings_of(task: dict[str, Any]) -> list[str]:
    from kascade.engine import injection

    _, plan, issues = validate_document(pipeline(task, params=PARAMS))
    assert plan is not None, issues
    return [str(w) for w in injection.warnings(plan)]


@pytest.mark.parametrize(
    ("task", "where"),
    [
        ({"command": ["sh", "-c", "echo {{ params.who }}"]}, "spec.tasks[0].command[2]"),
        ({"command": ["/bin/bash", "-ec", "echo '{{ params.who }}'"]}, "spec.tasks[0].command[2]"),
        ({"command": ["sh", "-c"], "args": ["echo {{ params.wild }}"]}, "spec.tasks[0].args[0]"),
        ({"command": ["python3", "-c", "print('{{ params.who }}')"]}, "spec.tasks[0].command[2]"),
        ({"script": "echo {{ params.who | upper }}"}, "spec.tasks[0].script"),
        ({"script": "#!/usr/bin/env python3\nprint('{{ params.who }}')"}, "spec.tasks[0].script"),
        (
            {"command": ["python3"], "script": "x = {{ params.who | shquote }}"},
            "spec.tasks[0].script",
        ),
        ({"script": "echo {{ 'x' + params.who }}"}, "spec.tasks[0].script"),
        (  # the Python SDK's BashOperator: bash_command is $1 of a wrapper that runs it
            {"command": ["bash", "-c", 'bash -c "$1" x', "x", "echo {{ params.who }}"]},
            "spec.tasks[0].command[4]",
        ),
        (
            {"expand": {"param": "params.o"}, "command": ["sh", "-c", "echo {{ item }}"]},
            "spec.tasks[0].command[2]",
        ),
    ],
)
def test_outside_data_unquoted_in_code_is_warned_about(task: dict[str, Any], where: str) -> None:
    [warning] = warnings_of(task)
    assert warning.startswith(f"{where}: {{{{ ")
    assert "unquoted" in warning and "Pass it through env" in warning


@pytest.mark.parametrize(
    "task",
    [
        {"command": ["sh", "-c", "echo {{ params.who | shquote }}"]},
        {
            "command": ["sh", "-c", 'echo "$WHO"'],
            "env": [{"name": "WHO", "value": "{{ params.who }}"}],
        },
        {"command": ["echo", "{{ params.who }}"]},  # no shell: one argument, never parsed
        {"command": ["sh", "-c", "sleep {{ params.n }}; echo {{ params.env }} {{ ds }}"]},
        {"command": ["python3", "-c", "print({{ params.who | tojson }})"]},
        {"script": "test {{ params.who | length }} -gt 0 && echo {{ task.try_number }}"},
        {"script": "echo {{ params.who == 'x' }}"},
        {"expand": {"items": ["a", "b"]}, "command": ["sh", "-c", "echo {{ item }}"]},
    ],
)
def test_quoted_typed_or_inert_values_are_not_warned_about(task: dict[str, Any]) -> None:
    assert warnings_of(task) == []


def test_a_template_task_is_warned_about_where_it_is_written() -> None:
    doc = pipeline({"template": {"name": "say"}}, params=PARAMS)
    doc["spec"]["templates"] = [
        {"name": "say", "task": {"command": ["sh", "-c", "echo {{ params.who }}"]}}
    ]
    doc["spec"]["tasks"].append({"name": "u", "image": "busybox", "template": {"name": "say"}})
    from kascade.engine import injection

    _, plan, issues = validate_document(doc)
    assert plan is not None, issues
    assert [w.path for w in injection.warnings(plan)] == ["spec.templates[0].task.command[2]"]


@pytest.mark.parametrize("example", sorted(EXPECTED))
def test_the_examples_pass_run_data_through_env(example: str) -> None:
    path = EXAMPLES / example
    result = CliRunner().invoke(cli, ["validate", str(path)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "warning:" not in result.output


def test_validate_prints_the_warning_and_still_passes(tmp_path: Path) -> None:
    path = tmp_path / "hello.yaml"
    path.write_text(
        yaml.safe_dump(
            pipeline({"command": ["sh", "-c", "echo hello {{ params.who }}"]}, params=PARAMS)
        )
    )
    result = CliRunner().invoke(cli, ["validate", str(path)], catch_exceptions=False)
    assert result.exit_code == 0
    assert f"{path}: warning: spec.tasks[0].command[2]: {{{{ params.who }}}} is put into shell" in (
        result.output
    )
    assert "OK (1 tasks)" in result.output


def test_the_python_twins_pass_run_data_through_env_too() -> None:
    twins = EXAMPLES.parents[1] / "examples" / "python"
    result = CliRunner().invoke(cli, ["validate", str(twins)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "warning:" not in result.output
