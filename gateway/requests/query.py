"""The query language of `GET /v1/resource-access-requests` (SPEC §9), parsed and checked.

Filters: `field=value` (equality) or `field=op:value` with op in eq, in, ne, gt, ge, lt, le;
a field may be given several times (all must hold, so `createdAt=ge:X&createdAt=lt:Y` is a
range). A date (`2026-01-01`) stands for that whole UTC day: `createdAt=2026-01-01` matches
the day, `le:` includes it, `gt:` starts after it. Keyset cursors make paging stable while
rows are inserted: a page never repeats or skips a row that existed when paging began.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from typing import Any

from gateway import patterns
from gateway.errors import BadRequest, InvalidField, NotFound
from gateway.timeutil import format_time, parse_date_or_time
from gateway.validation import check_text

STATES = ("PENDING", "APPROVED", "REJECTED", "CANCELLED", "EXPIRED", "GRANTED", "ERROR",
          "REVOKED")
FIELDS = {
    "requestId": "id", "requestedBy": "text", "action": "text", "resource": "text",
    "target": "text", "state": "state", "createdAt": "time", "processedAt": "time",
    "expiresAt": "time", "recipients": "recipient",
}
ORDER_KEYS = ("action", "state", "createdAt", "processedAt", "expiresAt")
OPERATORS = ("eq", "in", "ne", "gt", "ge", "lt", "le")
CONTROL_PARAMS = ("order", "limit", "cursor", "actionable", "all")
DEFAULT_LIMIT = 50
MAX_LIMIT = 500
MAX_IN_VALUES = 100
MAX_QUERY_TEXT = 4096
_CURSOR = re.compile(r"[A-Za-z0-9_-]{1,4096}")


@dataclass(frozen=True)
class Condition:
    field: str  # a key of FIELDS
    op: str  # eq, in, ne, gt, ge, lt, le; "none": recipients=none
    values: tuple[Any, ...]


@dataclass
class RequestQuery:
    conditions: list[Condition] = field(default_factory=list)
    order: list[tuple[str, bool]] = field(default_factory=lambda: [("createdAt", True)])
    limit: int = DEFAULT_LIMIT
    after: list[Any] | None = None  # the sort values of the previous page's last row
    scope: str = "own"  # own | actionable | all

    @property
    def order_text(self) -> str:
        return ",".join(("-" if desc else "") + key for key, desc in self.order)


def _time_conditions(name: str, op: str, raw: str) -> list[Condition]:
    try:
        start, end = parse_date_or_time(raw)
    except ValueError:
        raise InvalidField(name, "expected a date (2026-01-01) or an RFC 3339 time") from None
    lo = format_time(start)
    if end is None:
        return [Condition(name, op, (lo,))]
    hi = format_time(end)
    day = {
        "eq": [Condition(name, "ge", (lo,)), Condition(name, "lt", (hi,))],
        "ne": [Condition(name, "ne-range", (lo, hi))],
        "gt": [Condition(name, "ge", (hi,))],
        "ge": [Condition(name, "ge", (lo,))],
        "lt": [Condition(name, "lt", (lo,))],
        "le": [Condition(name, "lt", (hi,))],
    }
    return day[op]


def _value(name: str, kind: str, raw: str) -> Any:
    if kind == "id":
        if not patterns.matches("DIGITS", raw):
            raise InvalidField(name, "expected a request id (digits)")
        return int(raw)
    if kind == "state":
        state = raw.upper()
        if not raw.isascii() or state not in STATES:
            raise InvalidField(name, "expected one of " + ", ".join(STATES))
        return state
    # Text is one line of Unicode: a NUL or a lone surrogate could not even be stored.
    check_text(name, raw, max_len=MAX_QUERY_TEXT, single_line=True)
    if kind == "recipient":
        return raw.lower()
    return raw


def _conditions(name: str, raw: str) -> list[Condition]:
    kind = FIELDS[name]
    op, _, rest = raw.partition(":")
    if op in OPERATORS and _:
        value = rest
    else:
        op, value = "eq", raw
    if kind == "recipient" and op not in ("eq", "in", "ne"):
        raise InvalidField(name, "recipients takes eq, in or ne")
    if kind == "recipient" and op == "eq" and value == "none":
        # Requests nobody active may approve (their recipients left the directory).
        return [Condition(name, "none", ())]
    if op == "in":
        parts = value.split(",")
        if len(parts) > MAX_IN_VALUES:
            raise InvalidField(name, f"at most {MAX_IN_VALUES} values after in:")
        if kind == "time":
            raise InvalidField(name, "in: is not available for times; use ge: and lt:")
        return [Condition(name, "in", tuple(_value(name, kind, p) for p in parts))]
    if kind == "time":
        return _time_conditions(name, op, value)
    return [Condition(name, op, (_value(name, kind, value),))]


def _flag(name: str, raw: str) -> bool:
    if raw not in ("true", "false"):
        raise InvalidField(name, "expected true or false")
    return raw == "true"


def encode_cursor(order_text: str, values: list[Any]) -> str:
    raw = json.dumps({"o": order_text, "v": values}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(text: str, order_text: str, width: int) -> list[Any]:
    """The previous page's last sort values; a cursor this listing did not make is a 404
    (no such page), as the API document says: it cannot describe which cursors exist."""
    if not _CURSOR.fullmatch(text):
        raise InvalidField("cursor", "expected a cursor given by a previous page")
    try:
        data = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        values = data["v"]
        ok = data["o"] == order_text and isinstance(values, list) and len(values) == width
    except (ValueError, TypeError, KeyError, RecursionError, binascii.Error):
        ok = False
    if not ok or not all(isinstance(v, str | int) and not isinstance(v, bool) for v in values):
        raise NotFound("cursor: not a cursor of this listing (keep the same order)",
                       code="cursor-not-found", field="cursor")
    return values


def parse_limit(params: Any) -> int:
    raw = params.get("limit")
    if raw is None:
        return DEFAULT_LIMIT
    if not patterns.matches("DIGITS", raw) or not 1 <= int(raw) <= MAX_LIMIT:
        raise InvalidField("limit", f"expected an integer from 1 to {MAX_LIMIT}")
    return int(raw)


def check_params(params: Any, allowed: tuple[str, ...]) -> None:
    """Unknown query parameters are a 400: a typo must not silently widen a listing. Every
    value is one line of Unicode text (`patterns.LINE`): a NUL or a lone surrogate could not
    even be stored."""
    for name in params:
        if name not in allowed:
            raise InvalidField(name, "unknown query parameter", allowed=list(allowed))
    for name, value in params.items():
        check_text(name, value, max_len=MAX_QUERY_TEXT, single_line=True)


def parse_since(params: Any) -> str | None:
    """`since`: a date (its midnight UTC) or an RFC 3339 time, as stored text."""
    if "since" not in params:
        return None
    try:
        return format_time(parse_date_or_time(params["since"])[0])
    except ValueError:
        raise InvalidField("since", "expected a date or an RFC 3339 time") from None


def parse_id_cursor(params: Any) -> int | None:
    """The cursor of listings ordered by an increasing integer id."""
    if "cursor" not in params:
        return None
    raw = params["cursor"]
    if not patterns.matches("DIGITS", raw):
        raise InvalidField("cursor", "not a cursor of this listing")
    return int(raw)


def parse_request_query(params: Any) -> RequestQuery:
    """`params` is a multidict of query parameters (aiohttp's `request.query`)."""
    query = RequestQuery()
    for name in params:
        if name not in FIELDS and name not in CONTROL_PARAMS:
            raise BadRequest(
                f"{name}: unknown query parameter", code="invalid-field", field=name,
                allowed=sorted([*FIELDS, *CONTROL_PARAMS]),
            )
    for name in CONTROL_PARAMS:
        if len(params.getall(name, [])) > 1:
            raise InvalidField(name, "give it once")
    for name, raw in params.items():
        if name in FIELDS:
            query.conditions.extend(_conditions(name, raw))
    if "order" in params:
        order = []
        for part in params["order"].split(","):
            desc = part.startswith("-")
            key = part[1:] if desc else part
            if key not in ORDER_KEYS:
                raise InvalidField("order", "expected a comma list of " + ", ".join(ORDER_KEYS)
                                   + ", each optionally prefixed by -")
            if key not in (k for k, _ in order):  # a key given again changes nothing
                order.append((key, desc))
        query.order = order
    query.limit = parse_limit(params)
    actionable = _flag("actionable", params.get("actionable", "false"))
    everything = _flag("all", params.get("all", "false"))
    query.scope = "actionable" if actionable else "all" if everything else "own"
    if "cursor" in params:
        query.after = _decode_cursor(params["cursor"], query.order_text, len(query.order) + 1)
    return query
