"""`GET /v1/audit-events`: the append-only audit log, for admins."""

from __future__ import annotations

from aiohttp import web

from gateway.api.http import answer, user_of
from gateway.api.keys import DATABASE
from gateway.requests import permissions
from gateway.requests.query import check_params, parse_id_cursor, parse_limit, parse_since
from gateway.store import audit

routes = web.RouteTableDef()
PARAMS = ("since", "type", "subject", "cursor", "limit")


@routes.get("/v1/audit-events")
async def list_events(request: web.Request) -> web.Response:
    permissions.check_admin(user_of(request))
    query = request.query
    check_params(query, PARAMS)
    since = parse_since(query)
    after_id = parse_id_cursor(query)
    limit = parse_limit(query)
    events = await request.app[DATABASE].read(
        audit.page, since=since, type=query.get("type"), subject=query.get("subject"),
        after_id=after_id, limit=limit + 1,
    )
    more = len(events) > limit
    events = events[:limit]
    return answer({"items": events, "nextCursor": events[-1]["id"] if more and events else None})
