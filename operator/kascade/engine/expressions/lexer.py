"""The lexer: an expression's text as tokens (with their columns, for messages)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from kascade.engine.expressions.values import ExpressionError


@dataclass(frozen=True)
class Token:
    kind: str  # name, int, float, str, op, end
    value: Any
    column: int
    text: str


TOKEN_RE = re.compile(
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
ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "\\": "\\", "'": "'", '"': '"'}


def read_string(text: str, start: int) -> tuple[str, int]:
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
            if nxt in ESCAPES:
                out.append(ESCAPES[nxt])
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


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        m = TOKEN_RE.match(text, pos)
        if m is None:
            raise ExpressionError(f"unexpected {text[pos]!r}", expression=text, column=pos + 1)
        kind = m.lastgroup or ""
        col = pos + 1
        if kind == "ws":
            pos = m.end()
            continue
        if kind == "quote":
            string, end = read_string(text, pos)
            tokens.append(Token("str", string, col, text[pos:end]))
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
        tokens.append(Token(kind, value, col, raw))
        pos = m.end()
    tokens.append(Token("end", None, len(text) + 1, "end of expression"))
    return tokens
