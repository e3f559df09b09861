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
import json
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

__all__ = [
    "FILTERS",
    "MAX_DEPTH",
    "MAX_EXPRESSION_LENGTH",
    "MAX_LIST_LENGTH",
    "MAX_STRING_LENGTH",
    "Expression",
    "ExpressionError",
    "NullMap",
    "UndefinedError",
    "evaluate",
    "parse",
    "to_text",
    "truthy",
]

MAX_EXPRESSION_LENGTH = 4096
MAX_DEPTH = 64
MAX_STRING_LENGTH = 1 << 20
MAX_LIST_LENGTH = 100_000
_FALSE_STRINGS = frozenset({"", "false", "False", "0", "null"})

Segment = str | int
Path = tuple[Segment, ...]


class ExpressionError(ValueError):
    """Bad syntax or a failed evaluation; the message names text and column."""

    def __init__(
        self, reason: str, *, expression: str | None = None, column: int | None = None
    ) -> None:
        self.reason = reason
        self.expression = expression
        self.column = column
        message = reason
        if column is not None:
            message += f" at column {column}"
        if expression is not None:
            message += f" in {_shorten(expression)!r}"
        super().__init__(message)


class UndefinedError(ExpressionError):
    """A path that does not resolve; ``| default(...)`` turns it into a value."""


class NullMap(dict[str, Any]):
    """A mapping in which every missing key reads as null instead of being undefined.

    It stands for the outputs of a task that ended without succeeding: Airflow's
    ``xcom_pull`` returns None for such a task, so a downstream task that runs anyway
    (a join after a branch, an ``all_done`` cleanup) must render, not fail. It stays
    empty, so ``in``, ``length`` and JSON still see a task that wrote nothing.
    """


def _shorten(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --------------------------------------------------------------------------- values


def truthy(value: Any) -> bool:
    """Python truthiness, except that strings spelling falsehood are false.

    Task outputs and rendered templates are strings, so ``"false"`` coming
    back from a container must not count as true.
    """
    if isinstance(value, str):
        return value.strip() not in _FALSE_STRINGS
    return bool(value)


def _to_json(value: Any) -> str:
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise ExpressionError(f"value cannot be converted to JSON: {exc}") from None


def to_text(value: Any) -> str:
    """The string form used by templates: YAML-ish scalars, JSON containers."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, Mapping | list | tuple):
        return _checked(_to_json(value))  # type: ignore[no-any-return]
    return str(value)


def _checked(value: Any) -> Any:
    if isinstance(value, str) and len(value) > MAX_STRING_LENGTH:
        raise ExpressionError(f"string result longer than {MAX_STRING_LENGTH} characters")
    if isinstance(value, list) and len(value) > MAX_LIST_LENGTH:
        raise ExpressionError(f"list result longer than {MAX_LIST_LENGTH} items")
    if isinstance(value, float) and not math.isfinite(value):
        raise ExpressionError("numeric result is not finite")
    return value


def _type_name(value: Any) -> str:
    names = {str: "string", bool: "bool", int: "int", float: "float", type(None): "null"}
    if type(value) in names:
        return names[type(value)]
    if isinstance(value, Mapping):
        return "dict"
    if isinstance(value, list | tuple):
        return "list"
    return type(value).__name__


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# --------------------------------------------------------------------------- tokens


@dataclass(frozen=True)
class _Token:
    kind: str  # name, int, float, str, op, end
    value: Any
    column: int
    text: str


_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<float>\d+\.\d+(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+)
  | (?P<int>\d+)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:-[A-Za-z0-9_]+)*)
  | (?P<op>==|!=|<=|>=|[<>+\-()\[\],.|])
  | (?P<quote>['"])
    """,
    re.VERBOSE,
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "\\": "\\", "'": "'", '"': '"'}


def _read_string(text: str, start: int) -> tuple[str, int]:
    """Decode a quoted literal starting at ``start``; return value and end index."""
    quote = text[start]
    out: list[str] = []
    i = start + 1
    while i < len(text):
        ch = text[i]
        if ch == quote:
            return "".join(out), i + 1
        if ch == "\\":
            if i + 1 >= len(text):
                break
            nxt = text[i + 1]
            if nxt in _ESCAPES:
                out.append(_ESCAPES[nxt])
                i += 2
                continue
            if nxt == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", text[i + 2 : i + 6]):
                out.append(chr(int(text[i + 2 : i + 6], 16)))
                i += 6
                continue
            raise ExpressionError(f"unknown escape '\\{nxt}'", expression=text, column=i + 1)
        out.append(ch)
        i += 1
    raise ExpressionError("unterminated string", expression=text, column=start + 1)


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if m is None:
            raise ExpressionError(f"unexpected {text[pos]!r}", expression=text, column=pos + 1)
        kind = m.lastgroup or ""
        col = pos + 1
        if kind == "ws":
            pos = m.end()
            continue
        if kind == "quote":
            string, end = _read_string(text, pos)
            tokens.append(_Token("str", string, col, text[pos:end]))
            pos = end
            continue
        raw = m.group()
        value: Any = raw
        if kind == "int":
            value = int(raw)
        elif kind == "float":
            value = float(raw)
            if not math.isfinite(value):
                raise ExpressionError(f"number {raw} is too large", expression=text, column=col)
        tokens.append(_Token(kind, value, col, raw))
        pos = m.end()
    tokens.append(_Token("end", None, len(text) + 1, "end of expression"))
    return tokens


# --------------------------------------------------------------------------- AST

Context = Mapping[str, Any]


class _Node:
    column: int

    def eval(self, ctx: Context) -> Any:
        raise NotImplementedError

    def children(self) -> Iterator[_Node]:
        return iter(())


@dataclass(frozen=True)
class _Literal(_Node):
    value: Any
    column: int

    def eval(self, ctx: Context) -> Any:
        return self.value


@dataclass(frozen=True)
class _List(_Node):
    items: tuple[_Node, ...]
    column: int

    def eval(self, ctx: Context) -> Any:
        return [item.eval(ctx) for item in self.items]

    def children(self) -> Iterator[_Node]:
        return iter(self.items)


def _segment_text(seg: Segment) -> str:
    if isinstance(seg, int):
        return f"[{seg}]"
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(?:-[A-Za-z0-9_]+)*", seg):
        return f".{seg}"
    return f"[{seg!r}]"


def _lookup(value: Any, segments: Sequence[Segment], shown: str) -> Any:
    for seg in segments:
        here = shown
        shown += _segment_text(seg)
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
                f"{shown!r} is not defined ({here!r} is a {_type_name(value)}, "
                f"cannot look up {seg!r})"
            )
    return value


@dataclass(frozen=True)
class _PathNode(_Node):
    segments: tuple[Segment, ...]  # first is the root name
    column: int

    def eval(self, ctx: Context) -> Any:
        root = str(self.segments[0])
        if root not in ctx:
            raise UndefinedError(f"{root!r} is not defined")
        return _lookup(ctx[root], self.segments[1:], str(root))

    @property
    def dotted(self) -> str:
        return str(self.segments[0]) + "".join(_segment_text(s) for s in self.segments[1:])


@dataclass(frozen=True)
class _Access(_Node):
    base: _Node
    segments: tuple[Segment, ...]
    column: int

    def eval(self, ctx: Context) -> Any:
        return _lookup(self.base.eval(ctx), self.segments, "(...)")

    def children(self) -> Iterator[_Node]:
        return iter((self.base,))


@dataclass(frozen=True)
class _Unary(_Node):
    op: str  # "not" or "-"
    operand: _Node
    column: int

    def eval(self, ctx: Context) -> Any:
        value = self.operand.eval(ctx)
        if self.op == "not":
            return not truthy(value)
        if not _is_number(value):
            raise ExpressionError(f"cannot negate a {_type_name(value)}")
        return -value

    def children(self) -> Iterator[_Node]:
        return iter((self.operand,))


@dataclass(frozen=True)
class _BoolOp(_Node):
    op: str  # "and" / "or"; returns the deciding operand like Python
    operands: tuple[_Node, ...]
    column: int

    def eval(self, ctx: Context) -> Any:
        value: Any = None
        for operand in self.operands:
            value = operand.eval(ctx)
            if truthy(value) == (self.op == "or"):
                return value
        return value

    def children(self) -> Iterator[_Node]:
        return iter(self.operands)


def _compare(op: str, left: Any, right: Any) -> bool:
    if op == "==":
        return bool(left == right)
    if op == "!=":
        return bool(left != right)
    if op in ("in", "not in"):
        if isinstance(right, str):
            if not isinstance(left, str):
                raise ExpressionError(
                    f"'{op}' needs a string on the left when the right side is a string, "
                    f"got {_type_name(left)}"
                )
            found = left in right
        elif isinstance(right, list | tuple | Mapping):
            try:
                found = left in right
            except TypeError:
                found = False
        else:
            raise ExpressionError(f"'{op}' needs a list, dict or string, got {_type_name(right)}")
        return found if op == "in" else not found
    if not (
        (_is_number(left) and _is_number(right))
        or (isinstance(left, str) and isinstance(right, str))
    ):
        raise ExpressionError(
            f"cannot compare {_type_name(left)} {op} {_type_name(right)}; "
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
class _Compare(_Node):
    first: _Node
    rest: tuple[tuple[str, _Node], ...]
    column: int

    def eval(self, ctx: Context) -> Any:
        left = self.first.eval(ctx)
        for op, node in self.rest:
            right = node.eval(ctx)
            if not _compare(op, left, right):
                return False
            left = right
        return True

    def children(self) -> Iterator[_Node]:
        yield self.first
        for _, node in self.rest:
            yield node


def _arith(op: str, left: Any, right: Any) -> Any:
    if _is_number(left) and _is_number(right):
        return _checked(left + right if op == "+" else left - right)
    if op == "+" and isinstance(left, str) and isinstance(right, str):
        if len(left) + len(right) > MAX_STRING_LENGTH:
            raise ExpressionError(f"string result longer than {MAX_STRING_LENGTH} characters")
        return left + right
    if op == "+" and isinstance(left, list | tuple) and isinstance(right, list | tuple):
        return _checked([*left, *right])
    raise ExpressionError(
        f"cannot apply '{op}' to {_type_name(left)} and {_type_name(right)}"
        + ("; use '| string' to join text and numbers" if op == "+" else "")
    )


@dataclass(frozen=True)
class _Arith(_Node):
    first: _Node
    rest: tuple[tuple[str, _Node], ...]
    column: int

    def eval(self, ctx: Context) -> Any:
        value = self.first.eval(ctx)
        for op, node in self.rest:
            value = _arith(op, value, node.eval(ctx))
        return value

    def children(self) -> Iterator[_Node]:
        yield self.first
        for _, node in self.rest:
            yield node


@dataclass(frozen=True)
class _FilterCall:
    name: str
    args: tuple[_Node, ...]
    column: int


@dataclass(frozen=True)
class _Pipe(_Node):
    base: _Node
    filters: tuple[_FilterCall, ...]
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
                value = _checked(FILTERS[call.name].func(value, *args))
            except UndefinedError as exc:
                undefined = exc
            except ExpressionError as exc:
                raise ExpressionError(f"filter '{call.name}': {exc.reason}") from None
        if undefined is not None:
            raise undefined
        return value

    def children(self) -> Iterator[_Node]:
        yield self.base
        for call in self.filters:
            yield from call.args


# --------------------------------------------------------------------------- filters


@dataclass(frozen=True)
class _Filter:
    func: Callable[..., Any]
    min_args: int
    max_args: int


def _need_str(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise ExpressionError(f"{what} must be a string, got {_type_name(value)}")
    return value


def _f_int(value: Any) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    if isinstance(value, str) and len(value) <= 100:
        text = value.strip()
        try:
            return int(text, 10)
        except ValueError:
            pass
        try:
            number = float(text)
        except ValueError:
            pass
        else:
            if math.isfinite(number):
                return int(number)
    raise ExpressionError(f"cannot convert {_shorten(to_text(value), 40)!r} to int")


def _f_float(value: Any) -> float:
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and len(value) <= 100:
        try:
            number = float(value.strip())
        except ValueError:
            pass
        else:
            if math.isfinite(number):
                return number
    raise ExpressionError(f"cannot convert {_shorten(to_text(value), 40)!r} to float")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _f_fromjson(value: Any) -> Any:
    text = _need_str(value, "input")
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise ExpressionError(f"invalid JSON: {_shorten(str(exc), 80)}") from None


def _f_length(value: Any) -> int:
    if isinstance(value, str | list | tuple | Mapping):
        return len(value)
    raise ExpressionError(f"a {_type_name(value)} has no length")


def _f_join(value: Any, sep: Any = "") -> str:
    if not isinstance(value, list | tuple):
        raise ExpressionError(f"input must be a list, got {_type_name(value)}")
    glue = _need_str(sep, "separator")
    parts = [to_text(item) for item in value]
    if sum(map(len, parts)) + len(glue) * len(parts) > MAX_STRING_LENGTH:
        raise ExpressionError(f"string result longer than {MAX_STRING_LENGTH} characters")
    return glue.join(parts)


def _f_replace(value: Any, old: Any, new: Any) -> str:
    text = to_text(value)
    old = _need_str(old, "search text")
    new = _need_str(new, "replacement")
    count = text.count(old) if old else len(text) + 1
    if len(text) + count * (len(new) - len(old)) > MAX_STRING_LENGTH:
        raise ExpressionError(f"string result longer than {MAX_STRING_LENGTH} characters")
    return text.replace(old, new)


def _f_ds_add(value: Any, days: Any) -> str:
    text = _need_str(value, "date")
    if not _is_number(days) or int(days) != days:
        raise ExpressionError(f"days must be a whole number, got {to_text(days)!r}")
    try:
        day = datetime.strptime(text, "%Y-%m-%d")
        return (day + timedelta(days=int(days))).strftime("%Y-%m-%d")
    except (ValueError, OverflowError):
        raise ExpressionError(f"cannot add {days} days to {_shorten(text, 40)!r}") from None


# Directives with the same meaning on every platform; glibc extensions such as
# %-d or %s vary by libc and are refused.
_STRFTIME_OK = set("aAbBdHIjmMpSUwWyYzZfGuV%")
_DIRECTIVE = re.compile(r"%(.?)", re.DOTALL)


def _check_format(value: Any) -> str:
    fmt = _need_str(value, "format")
    if len(fmt) > 200:
        raise ExpressionError("format longer than 200 characters")
    for m in _DIRECTIVE.finditer(fmt):
        if m.group(1) not in _STRFTIME_OK:
            raise ExpressionError(
                f"unsupported format directive {m.group()!r} in {fmt!r}; "
                "use strftime directives such as %Y %m %d %H %M %S"
            )
    return fmt


def _f_ds_format(value: Any, in_fmt: Any, out_fmt: Any) -> str:
    text = _need_str(value, "date")
    try:
        return datetime.strptime(text, _check_format(in_fmt)).strftime(_check_format(out_fmt))
    except ValueError as exc:
        raise ExpressionError(f"cannot reformat {_shorten(text, 40)!r}: {exc}") from None


def _f_edge(index: int) -> Callable[[Any], Any]:
    def pick(value: Any) -> Any:
        if not isinstance(value, str | list | tuple):
            raise ExpressionError(f"input must be a list or string, got {_type_name(value)}")
        if not value:
            raise UndefinedError(f"{'first' if index == 0 else 'last'} of an empty value")
        return value[index]

    return pick


def _default(value: Any, fallback: Any = "") -> Any:  # handled in _Pipe
    return fallback if value is None else value


FILTERS: dict[str, _Filter] = {
    "default": _Filter(_default, 0, 1),
    "upper": _Filter(lambda v: to_text(v).upper(), 0, 0),
    "lower": _Filter(lambda v: to_text(v).lower(), 0, 0),
    "trim": _Filter(lambda v: to_text(v).strip(), 0, 0),
    "length": _Filter(_f_length, 0, 0),
    "int": _Filter(_f_int, 0, 0),
    "float": _Filter(_f_float, 0, 0),
    "string": _Filter(to_text, 0, 0),
    "tojson": _Filter(lambda v: _checked(_to_json(v)), 0, 0),
    "fromjson": _Filter(_f_fromjson, 0, 0),
    "join": _Filter(_f_join, 0, 1),
    "replace": _Filter(_f_replace, 2, 2),
    "ds_add": _Filter(_f_ds_add, 1, 1),
    "ds_format": _Filter(_f_ds_format, 2, 2),
    "first": _Filter(_f_edge(0), 0, 0),
    "last": _Filter(_f_edge(-1), 0, 0),
}


# --------------------------------------------------------------------------- parser

_COMPARE_OPS = frozenset({"==", "!=", "<", "<=", ">", ">="})
_CONSTANTS = {"true": True, "false": False, "null": None, "True": True, "False": False}
_CONSTANTS["None"] = None
_KEYWORDS = frozenset({"and", "or", "not", "in"})


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.pos = 0
        self.depth = 0

    # helpers
    @property
    def tok(self) -> _Token:
        return self.tokens[self.pos]

    def _peek(self, offset: int = 1) -> _Token:
        return self.tokens[min(self.pos + offset, len(self.tokens) - 1)]

    def error(self, reason: str, token: _Token | None = None) -> ExpressionError:
        token = token or self.tok
        return ExpressionError(reason, expression=self.text, column=token.column)

    def unexpected(self, expected: str | None = None) -> ExpressionError:
        tok = self.tok
        what = "end of expression" if tok.kind == "end" else repr(tok.text)
        suffix = f", expected {expected}" if expected else ""
        return self.error(f"unexpected {what}{suffix}")

    def is_op(self, value: str) -> bool:
        return self.tok.kind == "op" and self.tok.value == value

    def is_word(self, value: str) -> bool:
        return self.tok.kind == "name" and self.tok.value == value

    def expect_op(self, value: str) -> _Token:
        if not self.is_op(value):
            raise self.unexpected(f"{value!r}")
        tok = self.tok
        self.pos += 1
        return tok

    def nested(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"expression nested deeper than {MAX_DEPTH} levels")

    # grammar
    def parse(self) -> _Node:
        if self.tok.kind == "end":
            raise self.error("empty expression")
        node = self.expression()
        if self.tok.kind != "end":
            raise self.unexpected()
        return node

    def expression(self) -> _Node:
        self.nested()
        node = self.boolean("or")
        self.depth -= 1
        return node

    def boolean(self, op: str) -> _Node:
        sub: Callable[[], _Node] = (lambda: self.boolean("and")) if op == "or" else self.negation
        first = sub()
        operands = [first]
        while self.is_word(op):
            self.pos += 1
            operands.append(sub())
        return first if len(operands) == 1 else _BoolOp(op, tuple(operands), first.column)

    def negation(self) -> _Node:
        if self.is_word("not"):
            tok = self.tok
            self.pos += 1
            self.nested()
            operand = self.negation()
            self.depth -= 1
            return _Unary("not", operand, tok.column)
        return self.comparison()

    def compare_op(self) -> str | None:
        tok = self.tok
        if tok.kind == "op" and tok.value in _COMPARE_OPS:
            self.pos += 1
            return str(tok.value)
        if self.is_word("in"):
            self.pos += 1
            return "in"
        if self.is_word("not") and self._peek().kind == "name" and self._peek().value == "in":
            self.pos += 2
            return "not in"
        return None

    def comparison(self) -> _Node:
        first = self.additive()
        rest: list[tuple[str, _Node]] = []
        while (op := self.compare_op()) is not None:
            rest.append((op, self.additive()))
        return _Compare(first, tuple(rest), first.column) if rest else first

    def additive(self) -> _Node:
        first = self.unary()
        rest: list[tuple[str, _Node]] = []
        while self.tok.kind == "op" and self.tok.value in ("+", "-"):
            op = self.tok.value
            self.pos += 1
            rest.append((op, self.unary()))
        return _Arith(first, tuple(rest), first.column) if rest else first

    def unary(self) -> _Node:
        if self.is_op("-"):
            tok = self.tok
            self.pos += 1
            self.nested()
            operand = self.unary()
            self.depth -= 1
            if isinstance(operand, _Literal) and _is_number(operand.value):
                return _Literal(-operand.value, tok.column)
            return _Unary("-", operand, tok.column)
        return self.pipe()

    def pipe(self) -> _Node:
        base = self.postfix()
        calls: list[_FilterCall] = []
        while self.is_op("|"):
            self.pos += 1
            calls.append(self.filter_call())
        return _Pipe(base, tuple(calls), base.column) if calls else base

    def filter_call(self) -> _FilterCall:
        tok = self.tok
        if tok.kind != "name":
            raise self.unexpected("a filter name")
        spec = FILTERS.get(tok.value)
        if spec is None:
            raise self.error(
                f"unknown filter {tok.value!r} (known: {', '.join(sorted(FILTERS))})", tok
            )
        self.pos += 1
        args: list[_Node] = []
        if self.is_op("("):
            self.pos += 1
            args = self.items(")")
        if not spec.min_args <= len(args) <= spec.max_args:
            want = (
                str(spec.min_args)
                if spec.min_args == spec.max_args
                else f"{spec.min_args} to {spec.max_args}"
            )
            raise self.error(f"filter {tok.value!r} takes {want} argument(s), got {len(args)}", tok)
        if tok.value == "ds_format":
            for arg in args:
                if isinstance(arg, _Literal):
                    try:
                        _check_format(arg.value)
                    except ExpressionError as exc:
                        raise self.error(exc.reason, tok) from None
        return _FilterCall(tok.value, tuple(args), tok.column)

    def items(self, closer: str) -> list[_Node]:
        """Comma-separated expressions up to ``closer`` (consumed); trailing comma ok."""
        out: list[_Node] = []
        while not self.is_op(closer):
            out.append(self.expression())
            if self.is_op(","):
                self.pos += 1
            elif not self.is_op(closer):
                raise self.unexpected(f"',' or {closer!r}")
        self.pos += 1
        return out

    def subscript(self) -> Segment:
        tok = self.tok
        sign = 1
        if self.is_op("-") and self._peek().kind == "int":
            sign = -1
            self.pos += 1
            tok = self.tok
        if tok.kind == "int" or (tok.kind == "str" and sign == 1):
            self.pos += 1
            self.expect_op("]")
            return int(tok.value) * sign if tok.kind == "int" else str(tok.value)
        raise self.unexpected("an integer index or a quoted key")

    def accessors(self) -> list[Segment]:
        segments: list[Segment] = []
        while True:
            if self.is_op("."):
                self.pos += 1
                if self.tok.kind != "name":
                    raise self.unexpected("a name after '.'")
                segments.append(str(self.tok.value))
                self.pos += 1
            elif self.is_op("["):
                self.pos += 1
                segments.append(self.subscript())
            else:
                return segments

    def postfix(self) -> _Node:
        tok = self.tok
        if tok.kind == "name" and tok.value not in _KEYWORDS and tok.value not in _CONSTANTS:
            self.pos += 1
            return _PathNode((str(tok.value), *self.accessors()), tok.column)
        node = self.primary()
        segments = self.accessors()
        return _Access(node, tuple(segments), node.column) if segments else node

    def primary(self) -> _Node:
        tok = self.tok
        if tok.kind in ("int", "float", "str"):
            self.pos += 1
            return _Literal(tok.value, tok.column)
        if tok.kind == "name" and tok.value in _CONSTANTS:
            self.pos += 1
            return _Literal(_CONSTANTS[tok.value], tok.column)
        if self.is_op("("):
            self.pos += 1
            node = self.expression()
            self.expect_op(")")
            return node
        if self.is_op("["):
            self.pos += 1
            self.nested()
            items = self.items("]")
            self.depth -= 1
            if len(items) > MAX_LIST_LENGTH:
                raise self.error("list literal too long", tok)
            return _List(tuple(items), tok.column)
        raise self.unexpected()


# --------------------------------------------------------------------------- API


def _walk(node: _Node) -> Iterator[_Node]:
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(list(current.children())))


class Expression:
    """A parsed, immutable expression; safe to share through the parse cache."""

    __slots__ = ("_root", "text")

    def __init__(self, text: str, root: _Node) -> None:
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

    def references(self) -> list[Path]:
        seen: dict[Path, None] = {}
        for node in _walk(self._root):
            if isinstance(node, _PathNode):
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
    return Expression(text, _Parser(text).parse())


def evaluate(text: str, ctx: Mapping[str, Any]) -> Any:
    return parse(text).evaluate(ctx)
