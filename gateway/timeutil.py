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


_SECONDS_IN = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
_UNIT_WORDS = {
    "w": ("w", "wk", "wks", "week", "weeks"),
    "d": ("d", "day", "days"),
    "h": ("h", "hr", "hrs", "hour", "hours"),
    "m": ("m", "min", "mins", "minute", "minutes"),
    "s": ("s", "sec", "secs", "second", "seconds"),
}
_UNIT_OF = {word: unit for unit, words in _UNIT_WORDS.items() for word in words}
_HUMAN_PART = re.compile(r"(\d{1,6}(?:[.,]\d{1,6})?)\s*([a-z]+)")
_HUMAN_GLUE = re.compile(r"(?:\s|,|\band\b)*")
_CALENDAR_WORDS = ("month", "months", "mo", "year", "years", "y", "yr", "yrs")
HUMAN_DURATION_HINT = "such as 2 hours, 3 days, 90 minutes, 1 week, 1h or 2d"


def parse_human_duration(text: str) -> timedelta:
    """A duration as people type it: `2 hours`, `3 days`, `90 minutes`, `1 week`, `1h`,
    `2d`, `1 day 12 hours`, `1.5h` — or ISO 8601 (`PT2H`, `p3d`).

    Whole seconds, more than zero, at most ten years, so that `format_duration` of the result
    is a duration the API takes. Months and years are refused as in `parse_duration`.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"expected a duration {HUMAN_DURATION_HINT}")
    words = text.strip().lower()
    if words.startswith("p"):
        try:
            value = parse_api_duration(words.upper())
        except ValueError:
            raise ValueError(f"expected a duration {HUMAN_DURATION_HINT}, "
                             "or in ISO 8601 such as PT2H") from None
    else:
        value = _human_parts(words)
    if value <= timedelta(0):
        raise ValueError("the duration must be more than zero")
    if value > _MAX_DURATION:
        raise ValueError("the duration must be at most ten years")
    return value


def duration_for_api(text: str) -> str:
    """What a person typed, as the API's `duration`: ISO 8601 in the API's pattern as given,
    anything else read by `parse_human_duration` (the web inbox's form and the CLI)."""
    if isinstance(text, str) and patterns.matches("DURATION", text.strip()):
        return text.strip()
    return format_duration(parse_human_duration(text))


def _human_parts(words: str) -> timedelta:
    seconds = 0.0
    position = 0
    seen: set[str] = set()
    for match in _HUMAN_PART.finditer(words):
        glue = words[position:match.start()]
        if not _HUMAN_GLUE.fullmatch(glue):
            break  # something other than spaces, commas or "and" between the parts
        number, word = match.groups()
        unit = _UNIT_OF.get(word)
        if unit is None:
            if word in _CALENDAR_WORDS:
                raise ValueError("months and years have no fixed length: "
                                 "say it in days or weeks, such as 30 days")
            raise ValueError(f"“{word}” is not a unit of time: use minutes, hours, days "
                             "or weeks")
        if unit in seen:
            raise ValueError(f"“{word}” is given twice")
        seen.add(unit)
        seconds += float(number.replace(",", ".")) * _SECONDS_IN[unit]
        position = match.end()
    if not seen or words[position:].strip():
        raise ValueError(f"expected a duration {HUMAN_DURATION_HINT}")
    if abs(seconds - round(seconds)) > 1e-6:
        raise ValueError("the duration must come to whole seconds")
    return timedelta(seconds=round(seconds))


def _whole_units(value: timedelta) -> list[tuple[int, str]]:
    """(count, unit) for days, hours, minutes and seconds, largest first, zeros left out."""
    rest = int(value.total_seconds())
    out = []
    for unit in ("d", "h", "m", "s"):
        count, rest = divmod(rest, _SECONDS_IN[unit])
        if count:
            out.append((count, unit))
    return out


def format_duration(value: timedelta) -> str:
    """The ISO 8601 form the API takes (`PT2H`, `P3D`, `P1DT12H`; a week is `P7D`)."""
    parts = _whole_units(value)
    if not parts:
        raise ValueError("the duration must be more than zero")
    date = "".join(f"{n}D" for n, u in parts if u == "d")
    time_ = "".join(f"{n}{u.upper()}" for n, u in parts if u != "d")
    return "P" + date + ("T" + time_ if time_ else "")


def describe_duration(value: timedelta) -> str:
    """Words for people, which `parse_human_duration` reads back: `1 week`, `2 hours`,
    `1 day 12 hours`."""
    seconds = int(value.total_seconds())
    if seconds and seconds % _SECONDS_IN["w"] == 0:
        weeks = seconds // _SECONDS_IN["w"]
        return f"{weeks} week" + ("s" if weeks != 1 else "")
    names = {"d": "day", "h": "hour", "m": "minute", "s": "second"}
    return " ".join(f"{n} {names[u]}" + ("s" if n != 1 else "") for n, u in _whole_units(value))
