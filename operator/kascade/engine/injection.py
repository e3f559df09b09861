"""Templates spliced into code: where a run's data could become a command.

Rendering is safe (no template reaches Python), but what it renders may be code:
``sh -c 'echo hello {{ params.who }}'`` run with ``--param "who=x; touch PWNED"``
runs ``touch PWNED``, and ``json.loads('{{ tasks.t.outputs.rows }}')`` in a Python
script breaks on, or runs, data holding a quote. ``kascade validate`` warns when a
value from outside the manifest is put unquoted into shell or Python source (a
``sh -c`` or ``python -c`` argument, or a ``script``). Outside values are task outputs,
mapped items and params, except params that can only be numbers, booleans or one of
an enum of plain words.

The fix is to pass the value through ``env`` (it is then data, read as ``"$WHO"`` or
``os.environ["WHO"]``), or to quote it for the language: ``| shquote`` for a shell,
``| tojson`` for Python. Numbers made with ``| int``, ``| float`` or ``| length`` are
safe everywhere.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

from kascade.api.pipeline import Param, ParamType
from kascade.engine import expressions, templating
from kascade.engine.errors import Issue
from kascade.engine.expressions.nodes import (
    Access,
    Arith,
    BoolOp,
    Compare,
    ListNode,
    Node,
    PathNode,
    Pipe,
    Unary,
)
from kascade.engine.plan import Plan, PlannedTask

OUTSIDE = frozenset({"params", "tasks", "item"})
"""Template roots whose values come from outside the manifest (a run, a task's output)."""
SAFE_LAST_FILTER = {
    "shell": frozenset({"shquote", "int", "float", "length"}),
    "python": frozenset({"tojson", "int", "float", "length"}),
}
QUOTE_WITH = {"shell": "shquote", "python": "tojson"}
_SHELLS = frozenset({"sh", "bash", "dash", "ash", "zsh", "ksh", "mksh"})
_PYTHON = re.compile(r"python(\d+(\.\d+)?)?")


def _language(program: str) -> str | None:
    name = os.path.basename(program)
    if name in _SHELLS:
        return "shell"
    if _PYTHON.fullmatch(name):
        return "python"
    return None


def _runs_source(flag: str, language: str) -> bool:
    """``-c`` (and for a shell, a cluster ending in c: ``-ec``, ``-xc``)."""
    if language == "python":
        return flag == "-c"
    return flag.startswith("-") and not flag.startswith("--") and flag.endswith("c")


_RUNS_ARGUMENT = re.compile(r"""(?:-c|eval)\s+["']?\$\{?([1-9])\b""")
"""A shell script that runs one of its own arguments as a command (``bash -c "$1"``, the
way the Python SDK's BashOperator passes ``bash_command``)."""


def _argv_sources(argv: list[str]) -> Iterator[tuple[int, str]]:
    """(index, language) of each argument that an interpreter runs as source."""
    for i, word in enumerate(argv):
        language = _language(word)
        if language is None:
            continue
        for j in range(i + 1, len(argv)):
            flag = argv[j]
            if not flag.startswith("-"):
                break
            if _runs_source(flag, language) and j + 1 < len(argv):
                source = j + 1
                yield source, language
                if language == "shell":  # $0 is argv[source + 1], $N argv[source + 1 + N]
                    for n in {int(m) for m in _RUNS_ARGUMENT.findall(argv[source])}:
                        if source + 1 + n < len(argv):
                            yield source + 1 + n, "shell"
                return
        return


def _script_language(task: PlannedTask) -> str:
    spec = task.spec
    if spec.command:
        return _language(spec.command[0]) or "shell"
    first = (spec.script or "").split("\n", 1)[0]
    if first.startswith("#!") and "python" in first:
        return "python"
    return "shell"


def _unsafe(node: Node, language: str, typed: frozenset[str]) -> bool:
    """The node's value is text from outside the manifest, not quoted for ``language``
    (``typed``: ``params.<name>`` that a run can only give as numbers, booleans or plain
    words, and ``item`` when the task is mapped over literal items)."""
    if isinstance(node, Pipe):
        if node.filters and node.filters[-1].name in SAFE_LAST_FILTER[language]:
            return False
        return _unsafe(node.base, language, typed) or any(
            _unsafe(arg, language, typed) for call in node.filters for arg in call.args
        )
    if isinstance(node, PathNode):
        root = str(node.segments[0])
        if root == "params" and len(node.segments) == 2:
            return f"params.{node.segments[1]}" not in typed
        return root in OUTSIDE and root not in typed  # "item" of literal items
    if isinstance(node, Compare) or (isinstance(node, Unary) and node.op == "not"):
        return False  # a boolean
    parts: list[Node] = []
    if isinstance(node, Access):
        parts = [node.base]
    elif isinstance(node, Unary):
        parts = [node.operand]
    elif isinstance(node, BoolOp):
        parts = list(node.operands)
    elif isinstance(node, Arith):
        parts = [node.first, *(n for _, n in node.rest)]
    elif isinstance(node, ListNode):
        parts = list(node.items)
    return any(_unsafe(part, language, typed) for part in parts)


_PLAIN = re.compile(r"[A-Za-z0-9_.,:/+-]*")


def _plain_values(param: Param) -> bool:
    """Every value a run can give is a number, a boolean, or one of an enum of plain words
    (``resolve_params`` checks them), so it cannot break out of a string or a command."""
    if param.type in (ParamType.INTEGER, ParamType.NUMBER, ParamType.BOOLEAN):
        return True
    return param.enum is not None and all(
        not isinstance(v, str | list | dict) or (isinstance(v, str) and _PLAIN.fullmatch(v))
        for v in param.enum
    )


def _unsafe_templates(text: str, language: str, typed: frozenset[str]) -> Iterator[str]:
    for expression in templating.expressions_in(text):
        try:
            parsed = expressions.parse(expression)
        except expressions.ExpressionError:
            continue  # reported by validation
        if _unsafe(parsed.root, language, typed):
            yield expression.strip()


def _typed_names(task: PlannedTask, typed: frozenset[str]) -> frozenset[str]:
    """``typed``, and ``item`` too when the task is mapped over a list written in the
    manifest (``expand.items``: the author's own values, not a run's)."""
    expand = task.spec.expand
    return typed | {"item"} if expand is not None and expand.items is not None else typed


def _sources(task: PlannedTask) -> Iterator[tuple[str, str, str]]:
    """(field path, text, language) of every templated string that is code."""
    spec = task.spec
    command, args = list(spec.command or []), list(spec.args or [])
    if spec.script is not None:
        yield task.field_path("script", "script"), spec.script, _script_language(task)
        return
    for index, language in _argv_sources(command + args):
        if index < len(command):
            yield task.field_path("command", f"command[{index}]"), command[index], language
        else:
            at = index - len(command)
            yield task.field_path("args", f"args[{at}]"), args[at], language


def warnings(plan: Plan) -> list[Issue]:
    """Every template of the plan that puts outside data into code unquoted."""
    typed = frozenset(
        f"params.{name}" for name, param in (plan.spec.params or {}).items() if _plain_values(param)
    )
    found: dict[tuple[str, str], Issue] = {}
    for task in plan.tasks:
        known = _typed_names(task, typed)
        for path, text, language in _sources(task):
            if "{{" not in text:
                continue
            for expression in _unsafe_templates(text, language, known):
                found.setdefault((path, expression), _warning(path, expression, language))
    return list(found.values())


def _warning(path: str, expression: str, language: str) -> Issue:
    reader = '"$VALUE"' if language == "shell" else "os.environ['VALUE']"
    return Issue(
        path,
        f"{{{{ {expression} }}}} is put into {language} source unquoted: a value holding a "
        f"quote or a ';' would run as code. Pass it through env (env: [{{name: VALUE, "
        f"value: '{{{{ {expression} }}}}'}}], read as {reader}) or write "
        f"{{{{ {expression} | {QUOTE_WITH[language]} }}}}",
    )
