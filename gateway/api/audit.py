"""`GET /v1/audit-events`: the append-only audit log, for admins."""

from __future__ import annotations

from aiohttp import web

from gateway import permissions
from gateway.api.http import answer, user_of
from gateway.api.keys import DATABASE
from gateway.errors import InvalidField
from gateway.listing import parse_limit
from gateway.store import audit
from gateway.timeutil import format_time, parse_date_or_time

routes = web.RouteTableDef()
PARAMS = ("since", "type", "subject", "cursor", "limit")


@routes.get("/v1/audit-events")
async def list_events(request: web.Request) -> web.Response:
    permissions.check_admin(user_of(request))
    query = request.query
    for name in query:
        if name not in PARAMS:
            raise InvalidField(name, "unknown query parameter", allowed=list(PARAMS))
    since = None
    if "since" in query:
        try:
            since = format_time(parse_date_or_time(query["since"])[0])
        except ValueError:
            raise InvalidField("since", "expected a date or an RFC 3339 time") from None
    after_id = None
    if "cursor" in query:
        if not query["cursor"].isdecimal() or len(query["cursor"]) > 18:
            raise InvalidField("cursor", "not a cursor of this listing")
        after_id = int(query["cursor"])
    limit = parse_limit(query)
    events = await request.app[DATABASE].read(
        audit.page, since=since, type=query.get("type"), subject=query.get("subject"),
        after_id=after_id, limit=limit + 1,
    )
    more = len(events) > limit
    events = events[:limit]
    return answer({"items": events, "nextCursor": events[-1]["id"] if more and events else None})
