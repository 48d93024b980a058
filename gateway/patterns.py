"""The text formats of the API, as regular expressions written once: the gateway checks bodies
and query parameters with them, and schemas/openapi.yaml carries the same text (a test keeps
them equal), so that what the document allows is exactly what the gateway accepts.

They are written for both Python's `re` and ECMA-262 (with the `u` flag, as JSON Schema
validators use it): no lookarounds, no backreferences, so that generators can produce them.
"""

from __future__ import annotations

import re

# Characters refused in single-line text (controls, C1, line and paragraph separators) and in
# multi-line text (controls but tab, LF, CR). Lone surrogates (`\ud800` escapes in JSON) are
# refused too, but are not written here: they are not Unicode text, and Rust-based validators
# (jsonschema-rs, which schemathesis uses) refuse a pattern that names them.
_LINE_BAD = r"\x00-\x1f\x7f-\x9f\u2028\u2029"
_TEXT_BAD = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f"

LINE = rf"^[^{_LINE_BAD}]*$"
REQUIRED_LINE = rf"^[^{_LINE_BAD}]*[^\s{_LINE_BAD}][^{_LINE_BAD}]*$"
TEXT = rf"^[^{_TEXT_BAD}]*$"
REQUIRED_TEXT = rf"^[^{_TEXT_BAD}]*[^\s{_TEXT_BAD}][^{_TEXT_BAD}]*$"
KEY = rf"^[^\s{_LINE_BAD}](?:[^{_LINE_BAD}]*[^\s{_LINE_BAD}])?$"
EMAIL = rf"^[^@\s{_LINE_BAD}]+@[^@\s{_LINE_BAD}]+$"
CODE = r"^[a-z0-9][a-z0-9._-]{0,63}$"
ACTION = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"
DIGITS = r"^[0-9]{1,18}$"

# http(s) URLs: an ASCII host name or IPv4 address, an optional port up to 65535. A webhook
# URL has no user info (the host part cannot hold @) and no fragment.
_HOST = r"[Hh][Tt][Tt][Pp][Ss]?://[A-Za-z0-9._~%!$&()*+,;=-]+"
_PORT = (r"(?::(?:[0-9]{0,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]"
         r"|6553[0-5]))?")
ITEM_URL = rf"^(?:{_HOST}{_PORT}(?:[/?#][^{_LINE_BAD}]*)?)?$"
WEBHOOK_URL = rf"^{_HOST}{_PORT}(?:[/?][^#{_LINE_BAD}]*)?$"

# Dates from 1900 to 2999 that exist (February 29 in leap years only), and RFC 3339 times.
_YEAR = r"(?:19|2[0-9])[0-9]{2}"
_LEAP = r"(?:(?:19|2[0-9])(?:0[48]|[2468][048]|[13579][26])|2[048]00)"
_DATE = (rf"(?:{_YEAR}-(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])|(?:0[13-9]|1[0-2])-(?:29|30)"
         rf"|(?:0[13578]|1[02])-31)|{_LEAP}-02-29)")
_TIME = (r"T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,9})?"
         r"(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])")
DATE = rf"^{_DATE}$"
TIME = rf"^{_DATE}{_TIME}$"
DATE_OR_TIME = rf"^{_DATE}(?:{_TIME})?$"

# ISO 8601 durations in weeks, days, hours, minutes, seconds (at most 4 digits each), not zero:
# one alternative per component that is the first one not zero.
_N = r"[0-9]{1,4}"
_P = r"(?:[1-9][0-9]{0,3}|0[1-9][0-9]{0,2}|00[1-9][0-9]?|000[1-9])"


def _component(unit: str, kind: str) -> str:
    """One component: the first not zero, an optional zero before it, or any after it."""
    if kind == "first":
        return f"{_P}{unit}"
    return f"(?:0{{1,4}}{unit})?" if kind == "zero" else f"(?:{_N}{unit})?"


def _duration() -> str:
    units = ["W", "D", "H", "M", "S"]
    alternatives = []
    for first in range(len(units)):
        parts = []
        for i, unit in enumerate(units):
            parts.append((unit, "zero" if i < first else "first" if i == first else "any"))
        date = [(u, kind) for u, kind in parts if u in "WD"]
        time = [(u, kind) for u, kind in parts if u in "HMS"]
        text = "".join(_component(u, kind) for u, kind in date)
        if any(kind == "first" for _, kind in date):
            time = [(u, "any") for u, _ in time]
        if time:
            inner = "".join(_component(u, kind) for u, kind in time)
            if any(kind == "first" for _, kind in time):
                text += f"T{inner}"
            else:  # T needs at least one component after it
                options = []
                for j, (unit, _kind) in enumerate(time):
                    rest = "".join(f"(?:{_N}{u})?" for u, _k in time[j + 1:])
                    options.append(f"{_N}{unit}{rest}")
                text += f"(?:T(?:{'|'.join(options)}))?"
        alternatives.append(text)
    return "^P(?:" + "|".join(alternatives) + ")$"


DURATION = _duration()

# Filters of the request listing (SPEC §9): a value, an operator and a value, or in: and a
# list of at most 100 values; times take no in:, recipients only eq:, ne:, in:.
_OP = "(?:eq|ne|gt|ge|lt|le):"
_STATE = "(?:" + "|".join("".join(f"[{c}{c.lower()}]" for c in state) for state in (
    "PENDING", "APPROVED", "REJECTED", "CANCELLED", "EXPIRED", "GRANTED", "ERROR", "REVOKED",
)) + ")"
ID_FILTER = rf"^(?:{_OP})?[0-9]{{1,18}}$|^in:[0-9]{{1,18}}(?:,[0-9]{{1,18}}){{0,99}}$"
STATE_FILTER = rf"^(?:{_OP})?{_STATE}$|^in:{_STATE}(?:,{_STATE}){{0,99}}$"
TIME_FILTER = rf"^(?:{_OP})?{_DATE}(?:{_TIME})?$"
_ANY = rf"[^{_LINE_BAD}]*"
RECIPIENT_FILTER = (rf"^(?:[^gl{_LINE_BAD}]{_ANY}|[gl]|[gl][^te{_LINE_BAD}]{_ANY}|[gl][te]"
                    rf"|[gl][te][^:{_LINE_BAD}]{_ANY})?$")

ALL = {name: value for name, value in globals().items()
       if name.isupper() and isinstance(value, str) and value.startswith("^")}
COMPILED = {name: re.compile(value) for name, value in ALL.items()}


def matches(name: str, value: str) -> bool:
    """As a JSON Schema validator reads `pattern` (ECMA-262): `$` is the end of the text,
    never the place before a final newline, as it also is in Python."""
    found = COMPILED[name].search(value)
    return found is not None and found.end() == len(value)
