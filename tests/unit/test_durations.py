from datetime import timedelta

import pytest

from kascade.engine.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("5m", timedelta(minutes=5)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("2d", timedelta(days=2)),
        ("1w", timedelta(weeks=1)),
        ("500ms", timedelta(milliseconds=500)),
        ("250us", timedelta(microseconds=250)),
        ("1.5h", timedelta(hours=1, minutes=30)),
        ("1.1s", timedelta(seconds=1, microseconds=100_000)),
        (".5s", timedelta(milliseconds=500)),
        ("1d2h3m4s5ms", timedelta(days=1, hours=2, minutes=3, seconds=4, milliseconds=5)),
        (" 10m ", timedelta(minutes=10)),
        ("90", timedelta(seconds=90)),
        ("0", timedelta(0)),
        ("0s", timedelta(0)),
        (90, timedelta(seconds=90)),
        (1.5, timedelta(seconds=1.5)),
        (0, timedelta(0)),
    ],
)
def test_parse_duration(text: str | int | float, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "-1s",
        "-5",
        -3,
        -0.5,
        "1x",
        "h",
        "1h 30m",
        "1e3",
        "1.5.h",
        "1H",
        "s1",
        float("nan"),
        True,
    ],
)
def test_parse_duration_rejects(text: object) -> None:
    with pytest.raises(ValueError, match="invalid duration") as info:
        parse_duration(text)  # type: ignore[arg-type]
    assert repr(text) in str(info.value)
    assert "1h30m" in str(info.value)


@pytest.mark.parametrize(
    "text",
    [
        "99999999999999999999w",
        "999999999d",
        "36500d1s",
        "2739000d",
        float("inf"),
        4e9,
        pytest.param(10**5000, id="int-of-5001-digits"),
    ],
)
def test_durations_longer_than_the_bound_are_refused_with_it(text: object) -> None:
    """An overflowing duration was a traceback at run time (timedelta or date overflow)."""
    with pytest.raises(ValueError, match=r"invalid duration .*limit of 36500d \(100 years\)"):
        parse_duration(text)  # type: ignore[arg-type]


def test_the_bound_itself_is_accepted() -> None:
    assert parse_duration("36500d") == timedelta(days=36_500)
    assert parse_duration("5214w2d") == timedelta(days=36_500)


@pytest.mark.parametrize(
    ("td", "expected"),
    [
        (timedelta(0), "0s"),
        (timedelta(milliseconds=500), "500ms"),
        (timedelta(microseconds=1500), "1.5ms"),
        (timedelta(seconds=1.5), "1.5s"),
        (timedelta(seconds=9, milliseconds=250), "9.25s"),
        (timedelta(seconds=45), "45s"),
        (timedelta(seconds=45, milliseconds=400), "45s"),
        (timedelta(hours=1, minutes=30), "1h30m"),
        (timedelta(days=2, seconds=5), "2d5s"),
        (timedelta(weeks=1), "7d"),
        (timedelta(minutes=-5), "-5m"),
    ],
)
def test_format_duration(td: timedelta, expected: str) -> None:
    assert format_duration(td) == expected


@pytest.mark.parametrize("text", ["90s", "1h30m", "2d", "500ms", "1.5s", "3d4h5m6s"])
def test_round_trip(text: str) -> None:
    td = parse_duration(text)
    assert parse_duration(format_duration(td)) == td
