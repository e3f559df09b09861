"""The syntax tree and its evaluation: each node evaluates itself against plain data.

A path only indexes dicts by key and lists by position, so no name can reach a Python
object; filters run from the fixed table in ``filters.py``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kascade.engine.expressions.filters import FILTERS
from kascade.engine.expressions.values import (
    MAX_STRING_LENGTH,
    Deferred,
    ExpressionError,
    NullMap,
    Segment,
    UndefinedError,
    checked,
    is_number,
    resolved,
    truthy,
    type_name,
)

Context = Mapping[str, Any]


class Node:
    column: int

    def eval(self, ctx: Context) -> Any:
        raise NotImplementedError

    def children(self) -> Iterator[Node]:
        return iter(())


@dataclass(frozen=True)
class Literal(Node):
    value: Any
    column: int

    def eval(self, ctx: Context) -> Any:
        return self.value


@dataclass(frozen=True)
class ListNode(Node):
    items: tuple[Node, ...]
    column: int

    def eval(self, ctx: Context) -> Any:
        return [item.eval(ctx) for item in self.items]

    def children(self) -> Iterator[Node]:
        return iter(self.items)


def segment_text(seg: Segment) -> str:
    if isinstance(seg, int):
        return f"[{seg}]"
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(?:-[A-Za-z0-9_]+)*", seg):
        return f".{seg}"
    return f"[{seg!r}]"


def lookup(value: Any, segments: Sequence[Segment], shown: str) -> Any:
    """Index plain data by a path; a value kept elsewhere (Deferred) is read when reached."""
    for seg in segments:
        if isinstance(value, Deferred):
            value = value.resolve()
        here = shown
        shown += segment_text(seg)
        if isinstance(value, Mapping):
            if seg in value:
                value = value[seg]
            elif isinstance(seg, int) and str(seg) in value:
                value = value[str(seg)]
            elif isinstance(value, NullMap):
                value = None
            else:
                raise UndefinedError(f"{shown!r} is not defined (no key {seg!r} in {here!r})")
        elif isinstance(value, list | tuple) and isinstance(seg, int):
            if -len(value) <= seg < len(value):
                value = value[seg]
            else:
                raise UndefinedError(
                    f"{shown!r} is not defined (index {seg} out of range for {here!r} "
                    f"of length {len(value)})"
                )
        else:
            raise UndefinedError(
                f"{shown!r} is not defined ({here!r} is a {type_name(value)}, "
                f"cannot look up {seg!r})"
            )
    return resolved(value)


@dataclass(frozen=True)
class PathNode(Node):
    segments: tuple[Segment, ...]  # first is the root name
    column: int

    def eval(self, ctx: Context) -> Any:
        root = str(self.segments[0])
        if root not in ctx:
            raise UndefinedError(f"{root!r} is not defined")
        return lookup(ctx[root], self.segments[1:], str(root))

    @property
    def dotted(self) -> str:
        return str(self.segments[0]) + "".join(segment_text(s) for s in self.segments[1:])


@dataclass(frozen=True)
class Access(Node):
    base: Node
    segments: tuple[Segment, ...]
    column: int

    def eval(self, ctx: Context) -> Any:
        return lookup(self.base.eval(ctx), self.segments, "(...)")

    def children(self) -> Iterator[Node]:
        return iter((self.base,))


@dataclass(frozen=True)
class Unary(Node):
    op: str  # "not" or "-"
    operand: Node
    column: int

    def eval(self, ctx: Context) -> Any:
        value = self.operand.eval(ctx)
        if self.op == "not":
            return not truthy(value)
        if not is_number(value):
            raise ExpressionError(f"cannot negate a {type_name(value)}")
        return -value

    def children(self) -> Iterator[Node]:
        return iter((self.operand,))


@dataclass(frozen=True)
class BoolOp(Node):
    op: str  # "and" / "or"; returns the deciding operand like Python
    operands: tuple[Node, ...]
    column: int

    def eval(self, ctx: Context) -> Any:
        value: Any = None
        for operand in self.operands:
            value = operand.eval(ctx)
            if truthy(value) == (self.op == "or"):
                return value
        return value

    def children(self) -> Iterator[Node]:
        return iter(self.operands)


def compare(op: str, left: Any, right: Any) -> bool:
    if op == "==":
        return bool(left == right)
    if op == "!=":
        return bool(left != right)
    if op in ("in", "not in"):
        if isinstance(right, str):
            if not isinstance(left, str):
                raise ExpressionError(
                    f"'{op}' needs a string on the left when the right side is a string, "
                    f"got {type_name(left)}"
                )
            found = left in right
        elif isinstance(right, list | tuple | Mapping):
            try:
                found = left in right
            except TypeError:
                found = False
        else:
            raise ExpressionError(f"'{op}' needs a list, dict or string, got {type_name(right)}")
        return found if op == "in" else not found
    if not (
        (is_number(left) and is_number(right)) or (isinstance(left, str) and isinstance(right, str))
    ):
        raise ExpressionError(
            f"cannot compare {type_name(left)} {op} {type_name(right)}; "
            "ordering needs two numbers or two strings"
        )
    if op == "<":
        return bool(left < right)
    if op == "<=":
        return bool(left <= right)
    if op == ">":
        return bool(left > right)
    return bool(left >= right)


@dataclass(frozen=True)
class Compare(Node):
    first: Node
    rest: tuple[tuple[str, Node], ...]
    column: int

    def eval(self, ctx: Context) -> Any:
        left = self.first.eval(ctx)
        for op, node in self.rest:
            right = node.eval(ctx)
            if not compare(op, left, right):
                return False
            left = right
        return True

    def children(self) -> Iterator[Node]:
        yield self.first
        for _, node in self.rest:
            yield node


def arith(op: str, left: Any, right: Any) -> Any:
    if is_number(left) and is_number(right):
        return checked(left + right if op == "+" else left - right)
    if op == "+" and isinstance(left, str) and isinstance(right, str):
        if len(left) + len(right) > MAX_STRING_LENGTH:
            raise ExpressionError(f"string result longer than {MAX_STRING_LENGTH} characters")
        return left + right
    if op == "+" and isinstance(left, list | tuple) and isinstance(right, list | tuple):
        return checked([*left, *right])
    raise ExpressionError(
        f"cannot apply '{op}' to {type_name(left)} and {type_name(right)}"
        + ("; use '| string' to join text and numbers" if op == "+" else "")
    )


@dataclass(frozen=True)
class Arith(Node):
    first: Node
    rest: tuple[tuple[str, Node], ...]
    column: int

    def eval(self, ctx: Context) -> Any:
        value = self.first.eval(ctx)
        for op, node in self.rest:
            value = arith(op, value, node.eval(ctx))
        return value

    def children(self) -> Iterator[Node]:
        yield self.first
        for _, node in self.rest:
            yield node


@dataclass(frozen=True)
class FilterCall:
    name: str
    args: tuple[Node, ...]
    column: int


@dataclass(frozen=True)
class Pipe(Node):
    base: Node
    filters: tuple[FilterCall, ...]
    column: int

    def eval(self, ctx: Context) -> Any:
        undefined: UndefinedError | None = None
        value: Any = None
        try:
            value = self.base.eval(ctx)
        except UndefinedError as exc:
            undefined = exc
        for call in self.filters:
            args = [arg.eval(ctx) for arg in call.args]
            if call.name == "default":
                if undefined is not None or value is None:
                    value = args[0] if args else ""
                    undefined = None
                continue
            if undefined is not None:
                continue
            try:
                value = checked(FILTERS[call.name].func(value, *args))
            except UndefinedError as exc:
                undefined = exc
            except ExpressionError as exc:
                raise ExpressionError(f"filter '{call.name}': {exc.reason}") from None
            except (ArithmeticError, ValueError, TypeError) as exc:
                # A filter meeting a value it was not written for is the input's fault:
                # an error for the task, never a crash of the runner or the operator.
                raise ExpressionError(f"filter '{call.name}': {exc}") from None
        if undefined is not None:
            raise undefined
        return value

    def children(self) -> Iterator[Node]:
        yield self.base
        for call in self.filters:
            yield from call.args
