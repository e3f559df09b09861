"""``BashOperator``: a bash command, templated by the engine (``{{ ds }}`` ...).

As in Airflow, the last line the command prints is its XCom ``return_value``
(unless ``do_xcom_push=False``); a small bash wrapper captures it, so the task
needs bash in its image, not Python. A command that writes ``$KASCADE_OUTPUTS``
itself keeps those outputs instead. ``execute`` is the same behaviour in Python,
used by ``@task.bash`` and by subclasses that override ``execute``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from kascade.sdk.baseoperator import BaseOperator
from kascade.sdk.exceptions import AirflowException, AirflowSkipException, UnsupportedFeature

if TYPE_CHECKING:
    from kascade.sdk.lowering import Lowerer

#: Runs "$1" with stderr joined to stdout, prints every line, keeps the last one as
#: return_value (JSON-escaped) unless the command wrote outputs itself; exit code kept.
XCOM_WRAPPER = r"""bash -c "$1" kascade-bash 2>&1 | {
  last=
  while IFS= read -r line || [ -n "$line" ]; do printf '%s\n' "$line"; last=$line; done
  if [ -n "$KASCADE_OUTPUTS" ] && [ ! -s "$KASCADE_OUTPUTS" ]; then
    s=${last//\\/\\\\}; s=${s//\"/\\\"}; s=${s//$'\t'/\\t}; s=${s//$'\r'/\\r}
    s=$(printf '%s' "$s" | tr -d '\000-\010\013\014\016-\037')
    printf '{"return_value": "%s"}' "$s" > "$KASCADE_OUTPUTS"
  fi
}
exit ${PIPESTATUS[0]}
"""


class BashOperator(BaseOperator):
    template_fields: ClassVar[Sequence[str]] = ("bash_command", "env", "cwd")
    template_ext: ClassVar[Sequence[str]] = (".sh", ".bash")
    ui_color = "#f0ede4"
    mappable_fields: ClassVar[Sequence[str]] = ("bash_command", "cwd")

    def __init__(
        self,
        *,
        bash_command: str,
        env: dict[str, Any] | None = None,
        append_env: bool = False,
        output_encoding: str = "utf-8",
        skip_exit_code: int | None = None,
        skip_on_exit_code: int | list[int] | None = 99,
        cwd: str | None = None,
        output_processor: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if skip_exit_code is not None or skip_on_exit_code not in (99, None):
            raise UnsupportedFeature(
                "skip_on_exit_code", "a task cannot skip itself yet; use a branch or `when`"
            )
        if output_processor is not None:
            raise UnsupportedFeature(
                "output_processor", "parse the output in a downstream @task instead"
            )
        self.bash_command = bash_command
        self.env = env
        self.append_env = append_env
        self.output_encoding = output_encoding
        self.cwd = cwd

    def _command_text(self, lo: Lowerer) -> str:
        command = self.bash_command
        if isinstance(command, str) and command.endswith(tuple(self.template_ext)):
            command = lo.read_script(command)
        return lo.template(command, "bash_command")

    def _lower(self, lo: Lowerer) -> dict[str, Any]:
        text = self._command_text(lo)
        command = (
            ["bash", "-c", XCOM_WRAPPER, "kascade-bash", text]
            if self.do_xcom_push
            else [
                "bash",
                "-c",
                text,
            ]
        )
        fields: dict[str, Any] = {"image": lo.image(), "command": command}
        if self.env:
            fields["env"] = [
                {"name": str(k), "value": lo.template(v, f"env[{k!r}]")}
                for k, v in self.env.items()
            ]
        if self.cwd:
            fields["workingDir"] = lo.template(self.cwd, "cwd")
        return fields

    def execute(self, context: Mapping[str, Any]) -> Any:
        return run_bash(self.bash_command, self.env, self.cwd, self.output_encoding)


BashOperator._native_execute = BashOperator.execute


def run_bash(
    command: str, env: Mapping[str, Any] | None, cwd: str | None, encoding: str = "utf-8"
) -> str | None:
    """Run ``command`` with bash, echo its output, return the last line (Airflow's XCom)."""
    full_env = dict(os.environ)
    full_env.update({str(k): str(v) for k, v in (env or {}).items()})
    proc = subprocess.Popen(
        ["bash", "-c", command],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=full_env,
        cwd=cwd,
    )
    assert proc.stdout is not None
    last = ""
    for raw in proc.stdout:
        line = raw.decode(encoding, errors="replace").rstrip("\n")
        print(line, flush=True)
        last = line
    code = proc.wait()
    sys.stdout.flush()
    if code == 99:
        raise AirflowSkipException("Bash command returned exit code 99")
    if code != 0:
        raise AirflowException(
            f"Bash command failed. The command returned a non-zero exit code {code}."
        )
    return last or None
