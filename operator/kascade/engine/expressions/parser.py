"""The parser: tokens to a syntax tree, by recursive descent, with nesting capped."""

from __future__ import annotations

from collections.abc import Callable

from kascade.engine.expressions.filters import FILTERS, check_format
from kascade.engine.expressions.lexer import (
    Token,
    tokenize,
)
from kascade.engine.expressions.nodes import (
    Access,
    Arith,
    BoolOp,
    Compare,
    FilterCall,
    ListNode,
    Literal,
    Node,
    PathNode,
    Pipe,
    Unary,
)
from kascade.engine.expressions.values import (
    MAX_DEPTH,
    MAX_LIST_LENGTH,
    ExpressionError,
    Segment,
    is_number,
)

_COMPARE_OPS = frozenset({"==", "!=", "<", "<=", ">", ">="})
_CONSTANTS = {"true": True, "false": False, "null": None, "True": True, "False": False}
_CONSTANTS["None"] = None
_KEYWORDS = frozenset({"and", "or", "not", "in"})


class Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.pos = 0
        self.depth = 0

    # helpers
    @property
    def tok(self) -> Token:
        return self.tokens[self.pos]

    def _peek(self, offset: int = 1) -> Token:
        return self.tokens[min(self.pos + offset, len(self.tokens) - 1)]

    def error(self, reason: str, token: Token | None = None) -> ExpressionError:
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

    def expect_op(self, value: str) -> Token:
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
    def parse(self) -> Node:
        if self.tok.kind == "end":
            raise self.error("empty expression")
        node = self.expression()
        if self.tok.kind != "end":
            raise self.unexpected()
        return node

    def expression(self) -> Node:
        self.nested()
        node = self.boolean("or")
        self.depth -= 1
        return node

    def boolean(self, op: str) -> Node:
        sub: Callable[[], Node] = (lambda: self.boolean("and")) if op == "or" else self.negation
        first = sub()
        operands = [first]
        while self.is_word(op):
            self.pos += 1
            operands.append(sub())
        return first if len(operands) == 1 else BoolOp(op, tuple(operands), first.column)

    def negation(self) -> Node:
        if self.is_word("not"):
            tok = self.tok
            self.pos += 1
            self.nested()
            operand = self.negation()
            self.depth -= 1
            return Unary("not", operand, tok.column)
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

    def comparison(self) -> Node:
        first = self.additive()
        rest: list[tuple[str, Node]] = []
        while (op := self.compare_op()) is not None:
            rest.append((op, self.additive()))
        return Compare(first, tuple(rest), first.column) if rest else first

    def additive(self) -> Node:
        first = self.unary()
        rest: list[tuple[str, Node]] = []
        while self.tok.kind == "op" and self.tok.value in ("+", "-"):
            op = self.tok.value
            self.pos += 1
            rest.append((op, self.unary()))
        return Arith(first, tuple(rest), first.column) if rest else first

    def unary(self) -> Node:
        if self.is_op("-"):
            tok = self.tok
            self.pos += 1
            self.nested()
            operand = self.unary()
            self.depth -= 1
            if isinstance(operand, Literal) and is_number(operand.value):
                return Literal(-operand.value, tok.column)
            return Unary("-", operand, tok.column)
        return self.pipe()

    def pipe(self) -> Node:
        base = self.postfix()
        calls: list[FilterCall] = []
        while self.is_op("|"):
            self.pos += 1
            calls.append(self.filter_call())
        return Pipe(base, tuple(calls), base.column) if calls else base

    def filter_call(self) -> FilterCall:
        tok = self.tok
        if tok.kind != "name":
            raise self.unexpected("a filter name")
        spec = FILTERS.get(tok.value)
        if spec is None:
            raise self.error(
                f"unknown filter {tok.value!r} (known: {', '.join(sorted(FILTERS))})", tok
            )
        self.pos += 1
        args: list[Node] = []
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
                if isinstance(arg, Literal):
                    try:
                        check_format(arg.value)
                    except ExpressionError as exc:
                        raise self.error(exc.reason, tok) from None
        return FilterCall(tok.value, tuple(args), tok.column)

    def items(self, closer: str) -> list[Node]:
        """Comma-separated expressions up to ``closer`` (consumed); trailing comma ok."""
        out: list[Node] = []
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

    def postfix(self) -> Node:
        tok = self.tok
        if tok.kind == "name" and tok.value not in _KEYWORDS and tok.value not in _CONSTANTS:
            self.pos += 1
            return PathNode((str(tok.value), *self.accessors()), tok.column)
        node = self.primary()
        segments = self.accessors()
        return Access(node, tuple(segments), node.column) if segments else node

    def primary(self) -> Node:
        tok = self.tok
        if tok.kind in ("int", "float", "str"):
            self.pos += 1
            return Literal(tok.value, tok.column)
        if tok.kind == "name" and tok.value in _CONSTANTS:
            self.pos += 1
            return Literal(_CONSTANTS[tok.value], tok.column)
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
            return ListNode(tuple(items), tok.column)
        raise self.unexpected()
