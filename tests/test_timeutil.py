"""Stored times: one fixed-width text, however it is made; durations as people type them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.timeutil import (
    describe_duration,
    duration_for_api,
    format_duration,
    format_time,
    now_text,
    parse_api_duration,
    parse_human_duration,
    parse_time,
    text_of_ns,
    utcnow,
)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@given(st.integers(min_value=0, max_value=253402300799_999_999_999))
def test_the_fast_stamp_is_format_time(ns: int) -> None:
    """`now_text` (the dispatcher's stamps) writes exactly what `format_time` writes."""
    assert text_of_ns(ns) == format_time(EPOCH + timedelta(microseconds=ns // 1000))


def test_now_text_is_now() -> None:
    before = utcnow()
    stamp = now_text()
    after = utcnow()
    assert len(stamp) == 27 and stamp.endswith("Z")
    assert before - timedelta(microseconds=1) <= parse_time(stamp) <= after


SPELLINGS = {
    604800: ("w", "wk", "week", "weeks", "Weeks"),
    86400: ("d", "day", "days", "Day"),
    3600: ("h", "hr", "hrs", "hour", "hours", "HOURS"),
    60: ("m", "min", "mins", "minute", "minutes"),
    1: ("s", "sec", "second", "seconds"),
}


@st.composite
def typed_durations(draw: st.DrawFn) -> tuple[str, int]:
    """A duration as a person might type it, and the seconds it means."""
    units = draw(st.lists(st.sampled_from(sorted(SPELLINGS)), min_size=1, max_size=4,
                          unique=True))
    parts, seconds = [], 0
    for unit in units:
        count = draw(st.integers(min_value=0, max_value=400))
        word = draw(st.sampled_from(SPELLINGS[unit]))
        space = draw(st.sampled_from(("", " ", "  ")))
        parts.append(f"{count}{space}{word}")
        seconds += count * unit
    glue = draw(st.sampled_from((" ", ", ", " and ", "")))
    return glue.join(parts), seconds


@given(typed_durations())
def test_a_typed_duration_round_trips_through_its_iso_form(typed: tuple[str, int]) -> None:
    """What the form accepts is what the API takes: the ISO form of every parsed value
    means the same seconds, and so do the words shown for it."""
    text, seconds = typed
    if seconds == 0 or seconds > 3660 * 86400:
        with pytest.raises(ValueError):
            parse_human_duration(text)
        return
    value = parse_human_duration(text)
    assert value.total_seconds() == seconds
    iso = format_duration(value)
    assert parse_api_duration(iso) == value
    assert parse_human_duration(iso) == value
    assert parse_human_duration(iso.lower()) == value
    assert parse_human_duration(describe_duration(value)) == value


@given(st.integers(min_value=1, max_value=3660 * 86400))
def test_every_api_duration_reads_back_from_its_words(seconds: int) -> None:
    value = timedelta(seconds=seconds)
    assert parse_human_duration(describe_duration(value)) == value
    assert parse_api_duration(format_duration(value)) == value


@pytest.mark.parametrize(("text", "iso"), [
    ("2 hours", "PT2H"), ("3 days", "P3D"), ("90 minutes", "PT1H30M"), ("1 week", "P7D"),
    ("1h", "PT1H"), ("2d", "P2D"), ("1 day 12 hours", "P1DT12H"), ("1.5 hours", "PT1H30M"),
    ("2h30m", "PT2H30M"), ("PT4H", "PT4H"), ("p1w", "P7D"), (" 45 min ", "PT45M"),
])
def test_the_forms_people_type(text: str, iso: str) -> None:
    assert format_duration(parse_human_duration(text)) == iso
    assert duration_for_api(text) == (text if text in ("PT4H",) else iso)


def test_the_apis_own_durations_pass_as_given() -> None:
    assert [duration_for_api(t) for t in ("P1W", "PT90M", " P7D ")] == ["P1W", "PT90M", "P7D"]


@pytest.mark.parametrize(("text", "words"), [
    ("", "such as 2 hours"), ("2", "such as 2 hours"), ("hours", "such as 2 hours"),
    ("2 fortnights", "not a unit of time"), ("3 months", "30 days"), ("1 year", "30 days"),
    ("P1M", "ISO 8601"), ("0 hours", "more than zero"), ("2 hours 3 hours", "given twice"),
    ("-2 hours", "such as 2 hours"), ("2 hours please", "such as 2 hours"),
    ("0.0001 s", "whole seconds"), ("600 weeks", "ten years"),
])
def test_what_is_not_a_duration_is_said_in_words(text: str, words: str) -> None:
    with pytest.raises(ValueError) as refused:
        parse_human_duration(text)
    assert words in str(refused.value)
