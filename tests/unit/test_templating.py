import contextlib
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kascade.engine.expressions import MAX_STRING_LENGTH, ExpressionError
from kascade.engine.schedule import DataInterval
from kascade.engine.templating import (
    TemplateError,
    check,
    is_templated,
    macro_context,
    references,
    render,
    render_value,
)


def make_ctx(**extra: Any) -> dict[str, Any]:
    return macro_context(
        logical_date=datetime(2026, 1, 1, tzinfo=UTC),
        interval=DataInterval(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)),
        run_id="scheduled__2026-01-01T00:00:00+00:00",
        pipeline_name="etl",
        namespace="data",
        params={"region": "eu", "n": 3, "flags": [True, None], "cfg": {"a": 1.5}},
        task_outputs={
            "extract": {"rows": "120"},
            "transform.clean": {"rows": 7},
            "transform": {"status": "ok"},
            "say-hello": {"result": "hi"},
        },
        extra=extra or None,
    )


CTX = make_ctx()


def test_macro_context_values() -> None:
    assert CTX["ds"] == "2026-01-01"
    assert CTX["ds_nodash"] == "20260101"
    assert CTX["ts"] == "2026-01-01T00:00:00+00:00"
    assert CTX["ts_nodash"] == "20260101T000000"
    assert CTX["ts_nodash_with_tz"] == "20260101T000000+0000"
    assert CTX["logical_date"] == "2026-01-01 00:00:00+00:00"
    assert CTX["data_interval_start"] == "2026-01-01 00:00:00+00:00"
    assert CTX["data_interval_end"] == "2026-01-02 00:00:00+00:00"
    assert CTX["run_id"] == "scheduled__2026-01-01T00:00:00+00:00"
    assert CTX["pipeline"] == {"name": "etl", "namespace": "data"}
    assert CTX["params"]["region"] == "eu"
    assert CTX["tasks"] == {
        "extract": {"outputs": {"rows": "120"}},
        "transform": {"clean": {"outputs": {"rows": 7}}, "outputs": {"status": "ok"}},
        "say-hello": {"outputs": {"result": "hi"}},
    }


def test_macro_context_converts_to_utc_and_merges_extra_last() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    ctx = macro_context(
        logical_date=datetime(2026, 3, 29, 3, 0, tzinfo=berlin),
        interval=DataInterval(
            datetime(2026, 3, 29, 3, 0, tzinfo=berlin), datetime(2026, 3, 30, 2, 0, tzinfo=berlin)
        ),
        run_id="r",
        pipeline_name="p",
        namespace="n",
        params={},
        task_outputs={},
        extra={"item": {"x": 1}, "map_index": 2, "run_id": "override"},
    )
    assert ctx["ds"] == "2026-03-29"
    assert ctx["ts"] == "2026-03-29T01:00:00+00:00"
    assert ctx["data_interval_end"] == "2026-03-30 00:00:00+00:00"
    assert ctx["item"] == {"x": 1}
    assert ctx["map_index"] == 2
    assert ctx["run_id"] == "override"
    assert ctx["tasks"] == {}


def test_task_tree_order_does_not_matter() -> None:
    ctx = macro_context(
        logical_date=datetime(2026, 1, 1, tzinfo=UTC),
        interval=DataInterval(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)),
        run_id="r",
        pipeline_name="p",
        namespace="n",
        params={},
        task_outputs={"g.a": {"x": 1}, "g": {"y": 2}, "g.b.c": {"z": 3}},
    )
    assert (
        render("{{ tasks.g.a.outputs.x }}{{ tasks.g.outputs.y }}{{ tasks.g.b.c.outputs.z }}", ctx)
        == "123"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain text", "plain text"),
        ("", ""),
        ("{{ ds }}", "2026-01-01"),
        ("{{ds}}", "2026-01-01"),
        ("s3://bucket/{{ ds_nodash }}/part-{{ params.n }}.csv", "s3://bucket/20260101/part-3.csv"),
        ("{{ params.n }}", "3"),
        ("{{ params.cfg.a }}", "1.5"),
        ("{{ params.flags[0] }}", "true"),
        ("{{ params.flags[1] }}", ""),
        ("{{ params.flags }}", "[true,null]"),
        ("{{ params.cfg }}", '{"a":1.5}'),
        ("{{ tasks.transform.clean.outputs.rows }}", "7"),
        ("{{ tasks.extract.outputs.rows | int > 100 }}", "true"),
        ("{{ tasks.say-hello.outputs.result | upper }}!", "HI!"),
        ("{{ tasks['say-hello'].outputs.result }}", "hi"),
        ("{{ pipeline.namespace }}/{{ pipeline.name }}", "data/etl"),
        ("{{ params.missing | default('x') }}", "x"),
        ("{{ '{{' }} not a template }}", "{{ not a template }}"),
        ("{{ '}}' }}", "}}"),
        ('{{ "a}}b" }}', "a}}b"),
        ("stray }} braces", "stray }} braces"),
        ("{ single } {braces}", "{ single } {braces}"),
        ("{{ ds | ds_add(7) }}", "2026-01-08"),
        ("a{{ 1 }}b{{ 2 }}c", "a1b2c"),
        ("{{ 'multi\nline' }}", "multi\nline"),
        ("{{\n  params.region\n}}", "eu"),
    ],
)
def test_render(text: str, expected: str) -> None:
    assert render(text, CTX) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("abc {{ x", "unclosed '{{' at column 5 in 'abc {{ x'"),
        ("{{ 'open }}", "unclosed '{{' at column 1"),
        ("ok {{ ds }} {{", "unclosed '{{' at column 13"),
        ("x {{ params.x == ) }}", "unexpected ')' (in '{{ params.x == ) }}') at column 18"),
        ("{{}}", "empty expression (in '{{ }}') at column 3"),
        ("{{ ds | nope }}", "unknown filter 'nope'"),
        ("ab {{ params.zone }}", "'params.zone' is not defined"),
        ("ab {{ params.zone }}", "at column 4 in 'ab {{ params.zone }}'"),
        ("{{ params.n + 'x' }}", "cannot apply '+' to int and string"),
    ],
)
def test_render_errors(text: str, message: str) -> None:
    with pytest.raises(TemplateError) as info:
        render(text, CTX)
    assert message in str(info.value)
    assert isinstance(info.value, ExpressionError)
    assert isinstance(info.value, ValueError)


def test_render_value_renders_nested_strings_but_not_keys() -> None:
    spec = {
        "image": "busybox",
        "args": ["echo", "{{ ds }}", 3, None, True],
        "env": [{"name": "{{ ds }}", "value": "{{ params.region | upper }}"}],
        "{{ ds }}": {"nested": ("{{ run_id }}",)},
        "retries": 2,
    }
    assert render_value(spec, CTX) == {
        "image": "busybox",
        "args": ["echo", "2026-01-01", 3, None, True],
        "env": [{"name": "2026-01-01", "value": "EU"}],
        "{{ ds }}": {"nested": ["scheduled__2026-01-01T00:00:00+00:00"]},
        "retries": 2,
    }
    assert spec["args"] == ["echo", "{{ ds }}", 3, None, True]  # input untouched


def test_check() -> None:
    assert check("no templates") == []
    assert check("{{ ds }} and {{ params.unknown_is_fine_without_eval }}") == []
    errors = check("a {{ 1 + }} b {{ ok }} {{ x | nope }}")
    assert len(errors) == 2
    assert errors[0].startswith("unexpected end of expression (in '{{ 1 + }}') at column 10")
    assert "unknown filter 'nope'" in errors[1]
    assert "at column 31" in errors[1]
    assert check("{{ ds") == ["unclosed '{{' at column 1 in '{{ ds'"]


def test_references() -> None:
    text = (
        "{{ tasks.extract.outputs.rows }} {{ params.a | default(params.b) }}"
        " {{ tasks.extract.outputs.rows }}"
    )
    assert references(text) == [
        ("tasks", "extract", "outputs", "rows"),
        ("params", "a"),
        ("params", "b"),
    ]
    assert references("plain") == []
    with pytest.raises(TemplateError):
        references("{{ a ==")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("{{ x }}", True), ("a {{", True), ("plain", False), ("{ x }", False), ("}}", False)],
)
def test_is_templated(text: str, expected: bool) -> None:
    assert is_templated(text) is expected


@pytest.mark.parametrize(
    "text",
    [
        "{{ params.__class__ }}",
        "{{ params.__dict__ }}",
        "{{ ''.__class__.__mro__ }}",
        "{{ ().__class__ }}",
        "{{ params.region.upper() }}",
        "{{ __import__('os').system('id') }}",
        "{{ config }}",
        "{{ self }}",
        "{{ lipsum }}",
        "{% for x in y %}{{ x }}{% endfor %}",
    ],
)
def test_sandbox_abuse_rejected(text: str) -> None:
    with pytest.raises(TemplateError):
        render(text, CTX)


def test_output_size_capped() -> None:
    ctx = make_ctx(big="b" * (MAX_STRING_LENGTH // 2 + 1))
    assert len(render("{{ big }}", ctx)) == MAX_STRING_LENGTH // 2 + 1
    with pytest.raises(TemplateError, match="longer than"):
        render("{{ big }}{{ big }}", ctx)
    with pytest.raises(TemplateError, match="longer than"):
        render("{{ big + big }}", ctx)


def test_deep_nesting_rejected() -> None:
    with pytest.raises(TemplateError, match="nested deeper"):
        render("{{ " + "(" * 200 + "1" + ")" * 200 + " }}", CTX)


@settings(max_examples=500, deadline=None)
@given(st.text())
def test_render_only_raises_template_errors(text: str) -> None:
    with contextlib.suppress(TemplateError):
        render(text, CTX)
    check(text)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "{{",
                "}}",
                "{",
                "}",
                "'",
                '"',
                "\\",
                " ",
                "ds",
                "params",
                ".",
                "region",
                "|",
                "upper",
                "(",
                ")",
                "x",
                "1",
                "+",
                "tasks",
                "[",
                "]",
                "default",
            ]
        ),
        max_size=30,
    )
)
def test_render_brace_soup(parts: list[str]) -> None:
    text = "".join(parts)
    with contextlib.suppress(TemplateError):
        render(text, CTX)


@given(st.text().filter(lambda t: "{{" not in t))
def test_literal_text_round_trips(text: str) -> None:
    assert render(text, CTX) == text
    assert check(text) == []
    assert references(text) == []
    assert is_templated(text) is False
