"""Bad input gets a clear error naming the field and the problem, never a traceback (issue 13).

Every case here used to end in a Python traceback (exit 1, no summary) through the
command line; each now exits with the command's documented code and one line that
names the field, the value and, for a bound, the bound.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli_support import private_home  # noqa: F401  (the autouse fixture `home`)
from kascade.cli.main import cli
from kascade.engine import expressions

PIPELINE = """
apiVersion: kascade.io/v1alpha1
kind: Pipeline
metadata: {{name: bad}}
spec:
{spec}
  tasks:
{tasks}
"""
ECHO = "    - {name: t, image: busybox, command: [echo, hi]}"


def invoke(*args: str) -> tuple[int, str]:
    """Exit code and everything printed; an exception escaping the command fails the test."""
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout + result.stderr


def run_json(path: Path, **strict: object) -> tuple[int, dict[str, object]]:
    """``kascade run --output json``: the exit code and the record on stdout (strict JSON)."""
    result = CliRunner().invoke(cli, ["run", str(path), "--output", "json"], catch_exceptions=False)
    return result.exit_code, json.loads(result.stdout, **strict)  # type: ignore[arg-type]


def manifest(tmp_path: Path, spec: str = "", tasks: str = ECHO, name: str = "m.yaml") -> Path:
    path = tmp_path / name
    path.write_text(PIPELINE.format(spec=spec, tasks=tasks))
    return path


# -- durations and dates: bounded at validation, the bound said ------------------------------
@pytest.mark.parametrize(
    ("spec", "tasks", "field"),
    [
        ("  sla: 999999999d", ECHO, "spec.sla"),
        ("  runTimeout: 999999999d", ECHO, "spec.runTimeout"),
        ("  schedule: 2739000d", ECHO, "spec.schedule"),
        ("  history: {ttl: 99999999w}", ECHO, "spec.history.ttl"),
        ("", ECHO[:-1] + ", retryDelay: 999999999d}", "spec.tasks[0].retryDelay"),
        ("", ECHO[:-1] + ", timeout: 40000d}", "spec.tasks[0].timeout"),
        (
            "",
            "    - {name: s, sensor: {kind: externalTask, pipeline: other,"
            " logicalDateOffset: 999999w}}",
            "spec.tasks[0].sensor.logicalDateOffset",
        ),
    ],
)
def test_overflowing_durations_are_refused_with_the_bound(
    tmp_path: Path, spec: str, tasks: str, field: str
) -> None:
    code, out = invoke("validate", str(manifest(tmp_path, spec, tasks)))
    assert code == 1
    assert f"{field}: " in out and "36500d (100 years)" in out, out


@pytest.mark.parametrize("date", ["0001-01-01", "9999-12-31", "1899-12-31T23:59:59Z"])
def test_logical_dates_out_of_range_are_refused(tmp_path: Path, date: str) -> None:
    path = manifest(tmp_path, '  schedule: "@daily"')
    code, out = invoke("run", str(path), "--logical-date", date, "-q")
    assert code == 2
    assert f"--logical-date: '{date}' is out of range" in out and "1900-2999" in out


@pytest.mark.parametrize("spec", ["  startDate: '0001-01-01'", "  endDate: '9999-12-31T00:00:00'"])
def test_start_and_end_dates_out_of_range_are_refused(tmp_path: Path, spec: str) -> None:
    code, out = invoke("validate", str(manifest(tmp_path, spec + '\n  schedule: "@daily"')))
    assert code == 1 and "is out of range: dates must be in the years 1900-2999" in out


def test_a_run_at_the_edges_of_the_range_works(tmp_path: Path) -> None:
    path = manifest(tmp_path, '  schedule: "@yearly"\n  timezone: Pacific/Kiritimati')
    for date in ("1900-01-01", "2999-12-31T23:59:59-12:00"):
        code, out = invoke("run", str(path), "--logical-date", date, "-q")
        assert code == 0, out


# -- time zones ---------------------------------------------------------------------------------
@pytest.mark.parametrize("tz", ["Europe", "America", "A" * 300, "../../etc/passwd", "Etc/"])
def test_timezones_that_are_not_zones(tmp_path: Path, tz: str) -> None:
    code, out = invoke("validate", str(manifest(tmp_path, f"  timezone: '{tz}'")))
    assert code == 1
    assert "spec.timezone: unknown timezone" in out
    assert len(out) < 400  # the 300 characters are not echoed whole


# -- files ----------------------------------------------------------------------------------
def test_a_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(
        PIPELINE.format(spec="", tasks=ECHO.replace("hi", "caf\xe9")).encode("latin-1")
    )
    for command in ("validate", "run", "graph"):
        code, out = invoke(command, str(path))
        assert code in (1, 2)
        assert "not UTF-8 text: byte 0xe9 at line 8" in out, (command, out)


def test_a_utf8_bom_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + PIPELINE.format(spec="", tasks=ECHO).encode())
    assert invoke("validate", str(path))[0] == 0


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("9" * 5000, "an integer of more than 4300 digits"),
        (":".join(["59"] * 3000), "an integer of more than 4300 digits"),
        (".nan", "'.nan' is not a finite number"),
        ("-.inf", "'-.inf' is not a finite number"),
        ("1.0e+999", "'1.0e+999' is not a finite number"),
    ],
)
def test_numbers_json_cannot_carry_are_refused_where_written(
    tmp_path: Path, value: str, problem: str
) -> None:
    spec = f"  params:\n    n: {{type: number, default: {value}}}"
    code, out = invoke("validate", str(manifest(tmp_path, spec)))
    assert code == 1
    assert "line 7, column" in out and problem in out, out[:300]


# -- --param and templates -------------------------------------------------------------------
NUMBER = (
    "  params:\n    x: {type: number, default: 1}\n"
    "    o: {type: object, default: {}}\n    a: {type: array, default: []}"
)


@pytest.mark.parametrize(
    ("given", "problem"),
    [
        ("x=1e999", "--param x: 1e999 is not a finite number"),
        ("x=NaN", "--param x: NaN is not a number JSON allows"),
        ("x=-Infinity", "--param x: -Infinity is not a number JSON allows"),
        ("x=" + "9" * 5000, "--param x: an integer with too many digits"),
        ("o=" + '{"a":' * 60_000 + "1" + "}" * 60_000, "--param o: nested deeper than 64"),
        ("a=" + "[" * 60_000 + "]" * 60_000, "--param a: nested deeper than 64 levels"),
    ],
)
def test_param_json_no_run_can_use(tmp_path: Path, given: str, problem: str) -> None:
    tasks = '    - {name: t, image: busybox, command: [echo, "{{ params.x | int }}"]}'
    code, out = invoke("run", str(manifest(tmp_path, NUMBER, tasks)), "--param", given)
    assert code == 2
    assert problem in out
    assert len(out) < 1000


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("{{ params.big + params.big }}", "integer result has more than 4300 digits"),
        ("{{ params.big | float }}", "integer too large to convert to float"),
        ("{{ [params.big, params.big + 1] | tojson }}", "more than 4300 digits"),
        ("{{ tasks.make.outputs.x + tasks.make.outputs.x }}", "numeric result is not finite"),
    ],
)
def test_templates_on_huge_numbers_fail_the_task_not_the_runner(
    tmp_path: Path, template: str, problem: str
) -> None:
    """A 4,300-digit integer is fine to hold; one digit more cannot be printed. The task
    fails with the reason, and the run ends with its table (exit 1), not a traceback."""
    spec = f"  params:\n    big: {{type: integer, default: {'9' * 4300}}}"
    tasks = (
        "    - {name: make, image: busybox, script: 'echo x=1e308 > $KASCADE_OUTPUTS'}\n"
        f'    - {{name: t, image: busybox, dependsOn: [make], command: [echo, "{template}"]}}'
    )
    code, record = run_json(manifest(tmp_path, spec, tasks))
    assert code == 1, record
    task = record["tasks"]["t"]  # type: ignore[index]
    assert task["state"] == "failed"
    assert problem in task["message"]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("x | int", math.inf),
        ("x | int", -math.inf),
        ("x | int", math.nan),
        ("x | float", 10**400),
        ("x + x", 10**4299 * 9),
        ("x | string", 10**4300),
        ("[x] | tojson", 10**4300),
        ("'2024-01-01' | ds_add(x)", math.inf),
        ("x - 1", math.inf),
    ],
    ids=[
        "int-inf",
        "int-neg-inf",
        "int-nan",
        "float-huge",
        "sum",
        "string",
        "tojson",
        "ds_add",
        "minus",
    ],
)
def test_every_expression_error_is_an_expression_error(text: str, value: object) -> None:
    with pytest.raises(expressions.ExpressionError):
        expressions.evaluate(text, {"x": value})


def test_outputs_with_non_finite_numbers_fail_the_attempt_and_json_stays_strict(
    tmp_path: Path,
) -> None:
    tasks = (
        "    - name: t\n      image: busybox\n"
        '      script: \'echo "{\\"a\\": NaN, \\"b\\": 1e999}" > $KASCADE_OUTPUTS\'\n'
        "    - {name: u, image: busybox, script: 'echo n=NaN > $KASCADE_OUTPUTS'}"
    )

    def refuse(name: str) -> None:
        raise AssertionError(f"bare {name} in --output json")

    code, record = run_json(manifest(tmp_path, "", tasks), parse_constant=refuse)
    assert code == 1
    tasks_of = record["tasks"]
    assert tasks_of["t"]["state"] == "failed"  # type: ignore[index]
    assert "NaN is not a number JSON allows" in tasks_of["t"]["message"]  # type: ignore[index]
    assert tasks_of["u"]["outputs"] == {"n": "NaN"}  # type: ignore[index]  # stays text


# -- the cluster commands ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "command",
    [
        ["trigger", "x"],
        ["backfill", "x", "--from", "2024-01-01", "--to", "2024-01-02"],
        ["mark", "r", "--task", "t", "success"],
    ],
)
def test_cluster_commands_without_a_kubeconfig(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    from kascade.cli.main import main

    monkeypatch.setattr("sys.argv", ["kascade", *command])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 1


def test_trigger_with_a_broken_kubeconfig_says_so(tmp_path: Path) -> None:
    import subprocess
    import sys

    broken = tmp_path / "kubeconfig"
    broken.write_text("clusters: [\n")
    proc = subprocess.run(
        [sys.executable, "-m", "kascade", "trigger", "x", "--kubeconfig", str(broken)],
        capture_output=True,
        text=True,
        env={
            "PATH": "/usr/bin:/bin",
            "HOME": str(tmp_path),
            "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "operator"),
        },
        timeout=60,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert f"no usable kubeconfig at {broken}" in proc.stderr


def test_trigger_checks_its_params_before_it_asks_the_cluster() -> None:
    """``kascade trigger`` and the UI's Trigger form read params through
    ``actions.parse_params``: the same rules as ``kascade run``, before the cluster."""
    from kascade.actions import ActionError, parse_params

    spec = {"params": {"region": {"type": "string"}, "days": {"type": "integer", "default": 1}}}
    assert parse_params(("days=3", "region=eu"), spec) == {"days": 3, "region": "eu"}
    for pairs, problem in (
        (("days=" + "[" * 60_000 + "]" * 60_000,), "days: nested deeper than 64 levels"),
        (("days=NaN",), "days: NaN is not a number JSON allows"),
        (("regoin=us",), "unknown param 'regoin' (did you mean region?)"),
        (("days=many",), "param 'days' must be of type integer, got 'many'"),
    ):
        with pytest.raises(ActionError, match=re.escape(problem)):
            parse_params(pairs, spec)
