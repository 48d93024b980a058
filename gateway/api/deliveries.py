"""Handlers for delivery records: per request, the global list, one record, redelivery."""

from __future__ import annotations

import sqlite3
from typing import Any

from aiohttp import web

from gateway import patterns
from gateway.api.access_requests import visible_request
from gateway.api.http import answer, user_of
from gateway.api.keys import DATABASE, DISPATCHER
from gateway.delivery.outbox import redelivery
from gateway.errors import Conflict, InvalidField, NotFound
from gateway.requests import permissions
from gateway.requests.query import check_params, parse_id_cursor, parse_limit, parse_since
from gateway.store import audit
from gateway.store import deliveries as delivery_store
from gateway.timeutil import now_text

routes = web.RouteTableDef()
FILTERS = {"state": ("queued", "sending", "delivered", "failed", "interrupted"),
           "channel": ("webhook", "email", "notification"),
           "event": ("pending", "approved", "rejected", "cancelled", "expired", "granted",
                     "error", "revoked")}
PARAMS = (*FILTERS, "requestId", "since", "cursor", "limit")


@routes.get("/v1/resource-access-requests/{id}/deliveries")
async def request_deliveries(request: web.Request) -> web.Response:
    found = await visible_request(request)
    records = await request.app[DATABASE].read(delivery_store.for_request, found["id"])
    return answer({"items": [delivery_store.public(r) for r in records]})


@routes.get("/v1/deliveries")
async def list_deliveries(request: web.Request) -> web.Response:
    permissions.check_admin(user_of(request))
    query = request.query
    filters: dict[str, str] = {}
    check_params(query, PARAMS)
    for name, allowed in FILTERS.items():
        if name in query:
            if query[name] not in allowed:
                raise InvalidField(name, "expected one of " + ", ".join(allowed))
            filters[name] = query[name]
    if "requestId" in query:
        if not patterns.matches("DIGITS", query["requestId"]):
            raise InvalidField("requestId", "expected a request id (digits)")
        filters["requestId"] = query["requestId"]
    since = parse_since(query)
    after = parse_id_cursor(query)
    limit = parse_limit(query)
    records = await request.app[DATABASE].read(
        delivery_store.page, filters=filters, since=since, after_seq=after, limit=limit + 1)
    more = len(records) > limit
    records = records[:limit]
    cursor = str(records[-1]["seq"]) if more and records else None
    return answer({"items": [delivery_store.public(r) for r in records], "nextCursor": cursor})


@routes.get("/v1/deliveries/{id}")
async def get_delivery(request: web.Request) -> web.Response:
    permissions.check_admin(user_of(request))
    found = await request.app[DATABASE].read(delivery_store.get, request.match_info["id"])
    if found is None:
        raise NotFound("no such delivery", code="delivery-not-found")
    return answer(delivery_store.detail(found))


def _redeliver(conn: sqlite3.Connection, actor: str, delivery_id: str) -> dict[str, Any]:
    original = delivery_store.get(conn, delivery_id)
    if original is None:
        raise NotFound("no such delivery", code="delivery-not-found")
    if original["state"] in ("queued", "sending"):
        raise Conflict(f"the delivery is still {original['state']}", code="delivery-pending")
    if original["payload"] is None:
        raise Conflict("the delivery has no body to send (its rendering failed)",
                       code="nothing-to-redeliver")
    at = now_text()
    record = redelivery(conn, original, at)
    audit.add(conn, at=at, actor=actor, type="delivery.redelivered",
              subject=f"request:{original['requestId']}",
              after={"delivery": record["id"], "redeliveryOf": original["id"]})
    return delivery_store.public(record)


@routes.post("/v1/deliveries/{id}/redeliver")
async def redeliver(request: web.Request) -> web.Response:
    user = user_of(request)
    permissions.check_admin(user)
    created = await request.app[DATABASE].write(_redeliver, user.email,
                                                request.match_info["id"])
    request.app[DISPATCHER].poke()
    return answer(created, status=201)
