import contextlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kascade.engine.expressions import (
    MAX_EXPRESSION_LENGTH,
    MAX_STRING_LENGTH,
    ExpressionError,
    UndefinedError,
    evaluate,
    parse,
    truthy,
)

CTX: dict[str, Any] = {
    "params": {
        "region": "eu-west-1",
        "n": 3,
        "ratio": 0.5,
        "items": ["a", "b", "c"],
        "nested": {"k": [{"v": 42}]},
        "flag": "false",
        "empty": "",
        "nothing": None,
        "json": '{"a": [1, 2], "b": null}',
        "weird key": "w",
        "0": "zero-key",
    },
    "tasks": {
        "say-hello": {"outputs": {"result": "hi", "rows": "12"}},
        "transform": {"clean": {"outputs": {"rows": 7}}},
    },
    "ds": "2026-01-31",
    "a": 10,
    "b": 4,
    "a-b": "dash",
}


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        # literals
        ("1", 1),
        ("-7", -7),
        ("1.25", 1.25),
        ("2e3", 2000.0),
        ("'single'", "single"),
        ('"double"', "double"),
        (r"'it\'s'", "it's"),
        (r'"tab\there\n"', "tab\there\n"),
        (r"'\u00e9\\'", "é\\"),
        ("true", True),
        ("False", False),
        ("null", None),
        ("None", None),
        ("[1, 'two', [3], null]", [1, "two", [3], None]),
        ("[]", []),
        ("[1, 2,]", [1, 2]),
        # paths
        ("params.region", "eu-west-1"),
        ("params['region']", "eu-west-1"),
        ('params["weird key"]', "w"),
        ("params.items[0]", "a"),
        ("params.items[-1]", "c"),
        ("params.nested.k[0].v", 42),
        ("params['nested']['k'][0]['v']", 42),
        ("params[0]", "zero-key"),
        ("tasks.say-hello.outputs.result", "hi"),
        ("tasks.transform.clean.outputs.rows", 7),
        ("a-b", "dash"),
        ("a - b", 6),
        ("a -b", 6),
        ("([1, [2, 3]])[1][0]", 2),
        # arithmetic and concatenation
        ("1 + 2 - 4", -1),
        ("a + b", 14),
        ("0.5 + 1", 1.5),
        ("'ab' + 'cd'", "abcd"),
        ("[1] + [2]", [1, 2]),
        ("-(a)", -10),
        ("- -3", 3),
        # comparisons
        ("a == 10", True),
        ("a != 10", False),
        ("a > b", True),
        ("a >= 10", True),
        ("a < b", False),
        ("b <= 4", True),
        ("'abc' < 'abd'", True),
        ("1 == 1.0", True),
        ("'1' == 1", False),
        ("1 < 2 < 3", True),
        ("3 > 2 > 2", False),
        ("'b' in params.items", True),
        ("'z' not in params.items", True),
        ("'west' in params.region", True),
        ("'region' in params", True),
        ("[1] in [[1], 2]", True),
        ("null == None", True),
        # boolean logic and precedence
        ("true and false", False),
        ("true or false", True),
        ("not true", False),
        ("not not 1", True),
        ("false or 'x'", "x"),
        ("0 and 'x'", 0),
        ("not a == 10", False),
        ("true or false and false", True),
        ("(true or false) and false", False),
        ("not false and false", False),
        ("a - b == 6 and 'a' in 'abc'", True),
        ("1 + 2 == 3", True),
        ("not params.flag", True),
        ("params.n | string + 'x'", "3x"),
        ("'x' + params.n | string", "x3"),
    ],
)
def test_grammar(expr: str, expected: Any) -> None:
    result = evaluate(expr, CTX)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("params.missing | default('x')", "x"),
        ("params.nothing | default('x')", "x"),
        ("params.region | default('x')", "eu-west-1"),
        ("params.missing | default", ""),
        ("nope.deeper.still | default(1)", 1),
        ("params.missing | upper | default('d')", "d"),
        ("params.items[9] | default('d')", "d"),
        ("params.region.sub | default('d')", "d"),
        ("[] | first | default('none')", "none"),
        ("params.missing | default(params.region) | upper", "EU-WEST-1"),
        ("'MiXeD' | upper", "MIXED"),
        ("'MiXeD' | lower", "mixed"),
        ("'  pad \n' | trim", "pad"),
        ("params.items | length", 3),
        ("'abc' | length", 3),
        ("params | length", 11),
        ("'12' | int", 12),
        ("' 12 ' | int", 12),
        ("'1.9' | int", 1),
        ("2.7 | int", 2),
        ("true | int", 1),
        ("'1.5' | float", 1.5),
        ("3 | float", 3.0),
        ("3 | string", "3"),
        ("true | string", "true"),
        ("null | string", ""),
        ("[1, 'a'] | string", '[1,"a"]'),
        ("params.nested | tojson", '{"k":[{"v":42}]}'),
        ("'é' | tojson", '"é"'),
        ("params.json | fromjson", {"a": [1, 2], "b": None}),
        ("(params.json | fromjson).a[1]", 2),
        ("params.items | join", "abc"),
        ("params.items | join(', ')", "a, b, c"),
        ("[1, true, null] | join('-')", "1-true-"),
        ("params.region | replace('-', '_')", "eu_west_1"),
        ("ds | ds_add(1)", "2026-02-01"),
        ("ds | ds_add(-31)", "2025-12-31"),
        ("ds | ds_add(0)", "2026-01-31"),
        ("ds | ds_format('%Y-%m-%d', '%Y%m%d')", "20260131"),
        ("'20260131' | ds_format('%Y%m%d', '%d %b %Y')", "31 Jan 2026"),
        ("params.items | first", "a"),
        ("params.items | last", "c"),
        ("'xyz' | first", "x"),
        ("tasks.say-hello.outputs.rows | int > 10", True),
        ("params.region | upper | replace('EU', 'US') | lower", "us-west-1"),
    ],
)
def test_filters(expr: str, expected: Any) -> None:
    result = evaluate(expr, CTX)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("params.x == )", "unexpected ')' at column 13 in 'params.x == )'"),
        ("", "empty expression at column 1"),
        ("   ", "empty expression at column 4"),
        ("1 +", "unexpected end of expression at column 4"),
        ("(1", "unexpected end of expression, expected ')' at column 3"),
        ("1)", "unexpected ')' at column 2"),
        ("[1 2]", "unexpected '2', expected ',' or ']' at column 4"),
        ("a.", "expected a name after '.' at column 3"),
        ("a.1", "unexpected '1', expected a name after '.' at column 3"),
        ("a[b]", "unexpected 'b', expected an integer index or a quoted key at column 3"),
        ("a[1", "unexpected end of expression, expected ']' at column 4"),
        ("'open", "unterminated string at column 1"),
        ('x == "open', "unterminated string at column 6"),
        (r"'\q'", r"unknown escape '\q' at column 2"),
        ("a * b", "unexpected '*' at column 3"),
        ("a = b", "unexpected '=' at column 3"),
        ("a ! b", "unexpected '!' at column 3"),
        ("a | nope", "unknown filter 'nope'"),
        ("a | nope", "at column 5"),
        ("a | ", "unexpected end of expression, expected a filter name at column 5"),
        ("a | upper(1)", "filter 'upper' takes 0 argument(s), got 1 at column 5"),
        ("a | replace('x')", "filter 'replace' takes 2 argument(s), got 1"),
        ("a | default(1, 2)", "filter 'default' takes 0 to 1 argument(s), got 2"),
        ("ds | ds_format('%s', '%Y')", "unsupported format directive '%s'"),
        ("ds | ds_format('%Y', '%-d')", "unsupported format directive '%-'"),
        ("1e400", "number 1e400 is too large at column 1"),
        ("a and", "unexpected end of expression at column 6"),
        ("not", "unexpected end of expression at column 4"),
        ("in", "unexpected 'in' at column 1"),
        ("x.__class__ ==", "at column 15"),
    ],
)
def test_syntax_errors(expr: str, message: str) -> None:
    with pytest.raises(ExpressionError) as info:
        parse(expr)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("params.zone", "'params.zone' is not defined (no key 'zone' in 'params')"),
        ("zone", "'zone' is not defined"),
        ("params.items[5]", "'params.items[5]' is not defined (index 5 out of range"),
        ("params.region.x", "'params.region.x' is not defined ('params.region' is a string"),
        ("params.nothing.x", "'params.nothing' is a null"),
        ("params.zone | upper", "'params.zone' is not defined"),
        ("[] | first", "first of an empty value"),
    ],
)
def test_undefined(expr: str, message: str) -> None:
    with pytest.raises(UndefinedError) as info:
        evaluate(expr, CTX)
    assert message in str(info.value)
    assert f"in {expr!r}" in str(info.value)


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("a + 'x'", "cannot apply '+' to int and string"),
        ("'x' - 'y'", "cannot apply '-' to string and string"),
        ("a < 'x'", "cannot compare int < string"),
        ("params.items > 1", "cannot compare list > int"),
        ("1 in 'abc'", "needs a string on the left"),
        ("1 in 2", "'in' needs a list, dict or string, got int"),
        ("-'x'", "cannot negate a string"),
        ("'abc' | int", "filter 'int': cannot convert 'abc' to int"),
        ("'nan' | float", "cannot convert 'nan' to float"),
        ("'inf' | float", "cannot convert 'inf' to float"),
        ("a | fromjson", "filter 'fromjson': input must be a string"),
        ("'{' | fromjson", "invalid JSON"),
        ("'NaN' | fromjson", "invalid JSON"),
        ("a | length", "a int has no length"),
        ("a | join", "input must be a list"),
        ("'2026-13-01' | ds_add(1)", "cannot add 1 days"),
        ("ds | ds_add('1')", "days must be a whole number"),
        ("ds | ds_add(1.5)", "days must be a whole number"),
        ("'x' | ds_format('%Y', '%d')", "cannot reformat 'x'"),
        ("ds | ds_format(a, '%d')", "format must be a string"),
        ("a | first", "input must be a list or string"),
        ("1e308 + 1e308", "numeric result is not finite"),
    ],
)
def test_evaluation_errors(expr: str, message: str) -> None:
    with pytest.raises(ExpressionError) as info:
        evaluate(expr, CTX)
    assert message in str(info.value)
    assert not isinstance(info.value, UndefinedError) or "first" in expr


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        (False, False),
        (None, False),
        (0, False),
        (1, True),
        (0.0, False),
        ("", False),
        ("false", False),
        ("False", False),
        ("0", False),
        ("null", False),
        (" false\n", False),
        ("true", True),
        ("no", True),
        ("x", True),
        ([], False),
        ([0], True),
        ({}, False),
        ({"a": 1}, True),
    ],
)
def test_truthy(value: Any, expected: bool) -> None:
    assert truthy(value) is expected


def test_references() -> None:
    expr = parse(
        "tasks.extract.outputs.rows | int > params.min and 'x' in tasks['say-hello'].outputs.tags"
        " or params.items[0] == params.min | default(other.fallback)"
    )
    assert expr.references() == [
        ("tasks", "extract", "outputs", "rows"),
        ("params", "min"),
        ("tasks", "say-hello", "outputs", "tags"),
        ("params", "items", 0),
        ("other", "fallback"),
    ]
    assert parse("1 + 2").references() == []
    assert parse("[a, (b.c)]").references() == [("a",), ("b", "c")]


def test_parse_is_cached() -> None:
    assert parse("params.region | upper") is parse("params.region | upper")


def test_expression_is_reusable_across_contexts() -> None:
    expr = parse("x + 1")
    assert expr.evaluate({"x": 1}) == 2
    assert expr.evaluate({"x": 41}) == 42
    assert repr(expr) == "Expression('x + 1')"


# --- sandbox -----------------------------------------------------------------------


class Secretive:
    password = "hunter2"

    def __getitem__(self, key: str) -> str:
        return "leaked"


@pytest.mark.parametrize(
    "expr",
    [
        "params.__class__",
        "params.__dict__",
        "params.__class__.__mro__[1].__subclasses__",
        "params['__class__']",
        "__builtins__",
        "__import__",
        "params.items.__len__",
        "params.region.upper",
        "obj.password",
        "obj['password']",
        "params.keys",
        "ds.__class__",
        "''.__class__",
        "(1).__class__",
        "[].__class__",
        "(params).__dict__",
    ],
)
def test_sandbox_lookups_are_only_data(expr: str) -> None:
    ctx = {**CTX, "obj": Secretive()}
    with pytest.raises(UndefinedError, match="is not defined"):
        evaluate(expr, ctx)


@pytest.mark.parametrize(
    "expr",
    [
        "().__class__",
        "'x'.upper()",
        "params.region.upper()",
        "__import__('os')",
        "exec('1')",
        "lambda: 1",
        "[x for x in params]",
        "{'a': 1}",
        "a if b else c",
        "a; b",
        "a ** 2",
        "getattr(a, 'b')",
    ],
)
def test_sandbox_python_syntax_rejected(expr: str) -> None:
    with pytest.raises(ExpressionError, match="column"):
        evaluate(expr, CTX)


def test_expression_length_cap() -> None:
    text = "1" + " + 1" * MAX_EXPRESSION_LENGTH
    with pytest.raises(ExpressionError, match="longer than 4096"):
        parse(text)
    # Just under the cap long flat chains work (no recursion per operator).
    flat = " + ".join(["1"] * 1000)
    assert evaluate(flat, {}) == 1000
    ors = " or ".join(["false"] * 400)
    assert evaluate(ors, {}) is False


@pytest.mark.parametrize(
    "text",
    [
        "(" * 100 + "1" + ")" * 100,
        "[" * 100 + "]" * 100,
        "not " * 100 + "true",
        "- " * 100 + "1",
        "a | default(" * 100 + "1" + ")" * 100,
    ],
)
def test_nesting_depth_cap(text: str) -> None:
    with pytest.raises(ExpressionError, match="nested deeper than"):
        parse(text)


def test_moderate_nesting_is_fine() -> None:
    assert evaluate("(" * 20 + "1" + ")" * 20, {}) == 1
    assert evaluate("[" * 20 + "]" * 20, {}) == [[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]


@pytest.mark.parametrize(
    "expr",
    [
        "big + big",
        "big | replace('a', 'aa')",
        "'a' | replace('', big)",
        "[big, big] | join",
        "[big, big] | tojson",
        "[big, big] | string",
        "half + half + half",
    ],
)
def test_string_size_cap(expr: str) -> None:
    ctx = {"big": "a" * (MAX_STRING_LENGTH - 10), "half": "h" * (MAX_STRING_LENGTH // 2)}
    with pytest.raises(ExpressionError, match="longer than"):
        evaluate(expr, ctx)


def test_list_size_cap() -> None:
    ctx = {"l": list(range(60_000))}
    with pytest.raises(ExpressionError, match="list result longer"):
        evaluate("l + l", ctx)


def test_deep_json_is_rejected_not_crashing() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    with pytest.raises(ExpressionError, match="JSON"):
        evaluate("d | fromjson", {"d": deep})


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_parse_never_crashes(text: str) -> None:
    try:
        expr = parse(text)
    except ExpressionError:
        return
    with contextlib.suppress(ExpressionError):
        expr.evaluate(CTX)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "a",
                "b",
                "1",
                "'s'",
                "(",
                ")",
                "[",
                "]",
                ",",
                ".",
                "|",
                "upper",
                "default",
                "int",
                "+",
                "-",
                "==",
                "<",
                "in",
                "not",
                "and",
                "or",
                "null",
                "params",
                "items",
                "0",
                "first",
                "fromjson",
                "'{}'",
                " ",
            ]
        ),
        max_size=25,
    )
)
def test_token_soup_never_crashes(parts: list[str]) -> None:
    text = " ".join(parts)
    with contextlib.suppress(ExpressionError):
        evaluate(text, CTX)


@given(st.integers(min_value=-(10**12), max_value=10**12), st.text(max_size=30))
def test_literals_round_trip(number: int, text: str) -> None:
    assert evaluate(str(number), {}) == number
    escaped = text.replace("\\", "\\\\").replace("'", "\\'")
    assert evaluate(f"'{escaped}'", {}) == text
