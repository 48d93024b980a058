"""The API document's text formats are the gateway's: schemas/openapi.yaml carries the patterns
of gateway/patterns.py, and the gateway's parsers accept exactly what they match."""

from __future__ import annotations

from pathlib import Path

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway import patterns
from gateway.timeutil import parse_api_duration, parse_date_or_time, parse_time

ROOT = Path(__file__).resolve().parent.parent


def _camel(name: str) -> str:
    first, *rest = name.lower().split("_")
    return first + "".join(part.title() for part in rest)


def test_the_document_carries_the_gateways_patterns() -> None:
    document = yaml.safe_load((ROOT / "schemas" / "openapi.yaml").read_text("utf-8"))
    assert document["x-patterns"] == {_camel(k): v for k, v in patterns.ALL.items()}


def _accepts(parse, text: str) -> bool:
    try:
        parse(text)
    except ValueError:
        return False
    return True


near_durations = st.from_regex(r"P[0-9]{0,5}[WD]?(T[0-9]{0,5}[HMS]?[0-9]{0,5}[MS]?)?",
                               fullmatch=True)
near_times = st.from_regex(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}(:[0-9]{2})?(\.[0-9]{1,10})?"
    r"(Z|z|[+-][0-9]{2}:?[0-9]{2})?)?", fullmatch=True)


@settings(max_examples=500)
@given(st.one_of(near_durations, st.from_regex(patterns.DURATION), st.text(max_size=12)))
def test_durations_accepted_are_those_the_pattern_matches(text: str) -> None:
    assert _accepts(parse_api_duration, text) == patterns.matches("DURATION", text)


@settings(max_examples=500)
@given(st.one_of(near_times, st.from_regex(patterns.TIME), st.text(max_size=30)))
def test_times_accepted_are_those_the_pattern_matches(text: str) -> None:
    assert _accepts(parse_time, text) == patterns.matches("TIME", text)
    assert _accepts(parse_date_or_time, text) == patterns.matches("DATE_OR_TIME", text)
