"""Stored times: one fixed-width text, however it is made."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from gateway.timeutil import format_time, now_text, parse_time, text_of_ns, utcnow

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
