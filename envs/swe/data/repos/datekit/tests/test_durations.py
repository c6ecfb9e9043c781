import pytest
from datekit import DurationError, format_duration, parse_duration, relative_time


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("1h30m", 5400),
        ("2d 4h", 187200),
        ("1w", 604800),
        ("-15m", -900),
        ("+5s", 5),
        ("45", 45),
        ("1h 0m 1s", 3601),
    ],
)
def test_parse_compact(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("P1DT2H", 93600), ("PT90S", 90), ("P2W", 1209600), ("PT1H1M1S", 3661), ("-PT1M", -60)],
)
def test_parse_iso(text, seconds):
    assert parse_duration(text) == seconds


def test_parse_clock():
    assert parse_duration("01:30:00") == 5400
    assert parse_duration("2:05") == 125
    assert parse_duration("100:00:01") == 360001


@pytest.mark.parametrize(
    "text", ["", "abc", "5x", "1h1h", "P", "PT", "P1DT", "1:60", "1:2:3:4", "h5", "1h junk"]
)
def test_parse_rejects_bad_text(text):
    with pytest.raises(DurationError):
        parse_duration(text)


def test_format_short():
    assert format_duration(93784) == "1d 2h 3m 4s"
    assert format_duration(3600) == "1h"
    assert format_duration(61) == "1m 1s"
    assert format_duration(0) == "0s"
    assert format_duration(-90) == "-1m 30s"


def test_format_long_pluralises():
    assert format_duration(93784, style="long") == "1 day, 2 hours, 3 minutes, 4 seconds"
    assert format_duration(7201, style="long") == "2 hours, 1 second"
    assert format_duration(0, style="long") == "0 seconds"


def test_format_max_units_rounds_the_last_unit():
    assert format_duration(93784, max_units=2) == "1d 2h"
    assert format_duration(5400 + 1799, max_units=1) == "2h"
    assert format_duration(3600 + 1799, max_units=1) == "1h"
    assert format_duration(89, max_units=1) == "1m"
    assert format_duration(3600 * 25, style="long", max_units=1) == "1 day"


def test_format_rejects_unknown_style():
    with pytest.raises(ValueError, match="style"):
        format_duration(5, style="medium")


def test_round_trip():
    for seconds in (1, 59, 60, 3599, 3600, 86399, 86400, 1_000_000):
        assert parse_duration(format_duration(seconds).replace(" ", "")) == seconds


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (0, "just now"),
        (-9, "just now"),
        (10, "in 10 seconds"),
        (-120, "2 minutes ago"),
        (3600, "in 1 hour"),
        (-86400 * 3, "3 days ago"),
        (86400 * 15, "in 2 weeks"),
    ],
)
def test_relative_time(delta, text):
    assert relative_time(delta) == text
