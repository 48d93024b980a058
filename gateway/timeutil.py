"""Times as the spec writes them (RFC 3339 UTC, microseconds, `Z`) and ISO 8601 durations.

Stored times use the same fixed-width text, so that text order is time order in SQLite
indexes.
"""

from __future__ import annotations

import functools
import re
import time
from datetime import UTC, date, datetime, timedelta

from gateway import patterns

_MAX_DURATION = timedelta(days=3660)
_DURATION = re.compile(
    r"P(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:[.,]\d+)?)S)?)?"
)


def utcnow() -> datetime:
    return datetime.now(UTC)


def format_time(value: datetime) -> str:
    """`2026-01-01T09:00:00.000000Z`: fixed width, so text order is time order."""
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


@functools.lru_cache(maxsize=4)
def _second_text(second: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))


def text_of_ns(ns: int) -> str:
    """`format_time` of a Unix time in nanoseconds (the text of each second is kept)."""
    second, micros = divmod(ns // 1000, 1_000_000)
    return f"{_second_text(second)}.{micros:06d}Z"


def now_text() -> str:
    """`format_time(utcnow())` in a quarter of its time: the dispatcher stamps every delivery
    three times (claim, attempt, outcome)."""
    return text_of_ns(time.time_ns())


def parse_time(text: str) -> datetime:
    """Parse an RFC 3339 time with an offset (`patterns.TIME`, the API document's pattern:
    years 1900-2999); naive times are refused, not guessed."""
    if not isinstance(text, str) or not patterns.matches("TIME", text):
        raise ValueError("expected an RFC 3339 time such as 2026-01-01T09:00:00Z")
    return datetime.fromisoformat(text).astimezone(UTC)


def parse_date_or_time(text: str) -> tuple[datetime, datetime | None]:
    """A filter value: a full time (an instant) or a date (the UTC day it names).

    Returns (start, end): `end` is the start of the next day for a date, None for an instant.
    """
    if patterns.matches("DATE", text):
        day = date.fromisoformat(text)
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        return start, start + timedelta(days=1)
    return parse_time(text), None


def parse_duration(text: str) -> timedelta:
    """ISO 8601 duration in weeks, days, hours, minutes and seconds (`PT4H`, `P7D`).

    Years and months are refused: their length depends on the calendar, and access that
    ends at an ambiguous time is worse than a clear error (`P30D` says the same thing).
    """
    if not isinstance(text, str):
        raise ValueError("expected an ISO 8601 duration such as PT4H or P7D")
    match = _DURATION.fullmatch(text.strip().upper())
    if not match or text.strip().upper() in ("P", "PT") or text.strip().upper().endswith("T"):
        raise ValueError(
            "expected an ISO 8601 duration in weeks, days, hours, minutes or seconds "
            "such as PT4H or P7D"
        )
    parts = {k: float(v.replace(",", ".")) for k, v in match.groupdict().items() if v}
    value = timedelta(**parts)
    if value <= timedelta(0):
        raise ValueError("the duration must be positive")
    if value > _MAX_DURATION:
        raise ValueError("the duration must be at most ten years")
    return value


def parse_api_duration(text: str) -> timedelta:
    """A duration given to the API (`duration`, `previousSecretValidFor`): exactly
    `patterns.DURATION`, the API document's pattern (whole numbers of at most 4 digits per
    component, not zero), so that what the document allows is what the gateway accepts.
    The configuration's durations (`parse_duration`) may also carry fractions of seconds."""
    if not isinstance(text, str) or not patterns.matches("DURATION", text):
        raise ValueError(
            "expected an ISO 8601 duration in weeks, days, hours, minutes or seconds, "
            "whole numbers of at most 4 digits, not zero, such as PT4H or P7D"
        )
    match = _DURATION.fullmatch(text)
    assert match is not None
    return timedelta(**{k: int(v) for k, v in match.groupdict().items() if v})
