"""A sandboxed expression language for pipeline specs.

Specs are written by users who do not own the operator process, so nothing
here may reach Python objects: there is no eval/exec and no attribute access.
Values are plain data (dict, list, str, int, float, bool, None) and a path
only ever indexes dicts by key and lists by position, so names such as
``__class__`` are just missing keys. Expression length, nesting depth and the
size of produced strings/lists are capped, so a spec cannot make the
operator burn memory or CPU.

Syntax follows Jinja/Airflow closely enough that templates read naturally:
``params.region | default('eu') == 'eu' and tasks.extract.outputs.rows > 0``.
Identifiers may contain ``-`` because task names are DNS labels
(``say-hello``); subtraction therefore needs spaces (``a - b``). Filters bind
tighter than operators, as in Jinja.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from typing import Any

from kascade.engine.expressions.filters import FILTERS
from kascade.engine.expressions.nodes import Node, PathNode
from kascade.engine.expressions.parser import Parser
from kascade.engine.expressions.values import (
    MAX_DEPTH,
    MAX_EXPRESSION_LENGTH,
    MAX_LIST_LENGTH,
    MAX_STRING_LENGTH,
    Deferred,
    ExpressionError,
    NullMap,
    Path,
    Segment,
    UndefinedError,
    to_text,
    truthy,
)

__all__ = [
    "FILTERS",
    "MAX_DEPTH",
    "MAX_EXPRESSION_LENGTH",
    "MAX_LIST_LENGTH",
    "MAX_STRING_LENGTH",
    "Deferred",
    "Expression",
    "ExpressionError",
    "NullMap",
    "Path",
    "Segment",
    "UndefinedError",
    "evaluate",
    "parse",
    "to_text",
    "truthy",
]


def _walk(node: Node) -> Iterator[Node]:
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(list(current.children())))


class Expression:
    """A parsed, immutable expression; safe to share through the parse cache."""

    __slots__ = ("_root", "text")

    def __init__(self, text: str, root: Node) -> None:
        self.text = text
        self._root = root

    def evaluate(self, ctx: Mapping[str, Any]) -> Any:
        try:
            return self._root.eval(ctx)
        except UndefinedError as exc:
            raise UndefinedError(exc.reason, expression=self.text) from None
        except ExpressionError as exc:
            raise ExpressionError(exc.reason, expression=self.text) from None
        except RecursionError:
            raise ExpressionError("value nested too deeply", expression=self.text) from None
        except (ArithmeticError, ValueError, TypeError) as exc:
            # Whatever a value does to an operator (a number too large to print, an
            # overflow) is an error of this expression, never a crash of its caller.
            raise ExpressionError(str(exc), expression=self.text) from None

    @property
    def root(self) -> Node:
        """The syntax tree (read only: what a check such as ``engine/injection`` inspects)."""
        return self._root

    def references(self) -> list[Path]:
        seen: dict[Path, None] = {}
        for node in _walk(self._root):
            if isinstance(node, PathNode):
                seen.setdefault(node.segments, None)
        return list(seen)

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"


@functools.lru_cache(maxsize=4096)
def parse(text: str) -> Expression:
    """Parse once, evaluate many times: specs are re-rendered on every reconcile."""
    if not isinstance(text, str):
        raise ExpressionError(f"expression must be a string, got {type(text).__name__}")
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise ExpressionError(
            f"expression longer than {MAX_EXPRESSION_LENGTH} characters",
            expression=text,
        )
    return Expression(text, Parser(text).parse())


def evaluate(text: str, ctx: Mapping[str, Any]) -> Any:
    return parse(text).evaluate(ctx)
