"""Handlers for delivery records: per request, the global list, one record, redelivery."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from gateway import patterns
from gateway.api.access_requests import visible_request
from gateway.api.http import answer, read_json, user_of
from gateway.api.keys import DATABASE, DISPATCHER
from gateway.delivery.outbox import redelivery
from gateway.errors import Conflict, InvalidField, NotFound
from gateway.requests import permissions
from gateway.requests.query import check_params, parse_id_cursor, parse_limit, parse_since
from gateway.store import audit
from gateway.store import deliveries as delivery_store
from gateway.timeutil import now_text
from gateway.validation import Fields, check_text

routes = web.RouteTableDef()
FILTERS = {"state": ("queued", "sending", "delivered", "failed", "interrupted"),
           "channel": ("webhook", "email", "notification"),
           "event": ("pending", "approved", "rejected", "cancelled", "expired", "granted",
                     "error", "revoked")}
FILTER_NAMES = (*FILTERS, "requestId", "since")
PARAMS = (*FILTER_NAMES, "cursor", "limit")
REDELIVER_AT_MOST = 1000


def parse_filters(values: Mapping[str, Any], path: str = "") -> tuple[dict[str, str], str | None]:
    """The filters of GET /v1/deliveries (query parameters, or the redeliver body's
    `filters`): the equality filters, and `since` as stored text."""
    filters: dict[str, str] = {}
    for name, allowed in FILTERS.items():
        if name in values:
            if values[name] not in allowed:
                raise InvalidField(path + name, "expected one of " + ", ".join(allowed))
            filters[name] = values[name]
    if "requestId" in values:
        if not isinstance(values["requestId"], str) \
                or not patterns.matches("DIGITS", values["requestId"]):
            raise InvalidField(path + "requestId", "expected a request id (digits)")
        filters["requestId"] = values["requestId"]
    try:
        since = parse_since(values)
    except InvalidField:
        raise InvalidField(path + "since", "expected a date or an RFC 3339 time") from None
    return filters, since


@routes.get("/v1/resource-access-requests/{id}/deliveries")
async def request_deliveries(request: web.Request) -> web.Response:
    found = await visible_request(request)
    records = await request.app[DATABASE].read(delivery_store.for_request, found["id"])
    return answer({"items": [delivery_store.public(r) for r in records]})


@routes.get("/v1/deliveries")
async def list_deliveries(request: web.Request) -> web.Response:
    permissions.check_admin(user_of(request))
    query = request.query
    check_params(query, PARAMS)
    filters, since = parse_filters(query)
    after = parse_id_cursor(query)
    limit = parse_limit(query)
    records = await request.app[DATABASE].read(
        delivery_store.page, filters=filters, since=since, after_seq=after, limit=limit + 1)
    more = len(records) > limit
    records = records[:limit]
    cursor = str(records[-1]["seq"]) if more and records else None
    return answer({"items": [delivery_store.public(r) for r in records], "nextCursor": cursor})


# Not "redeliver": that path is POST /v1/deliveries/redeliver's alone (its Allow says POST).
@routes.get("/v1/deliveries/{id:(?!redeliver$)[^/]+}")
async def get_delivery(request: web.Request) -> web.Response:
    permissions.check_admin(user_of(request))
    found = await request.app[DATABASE].read(delivery_store.get, request.match_info["id"])
    if found is None:
        raise NotFound("no such delivery", code="delivery-not-found")
    return answer(delivery_store.detail(found))


def redeliver_record(conn: sqlite3.Connection, actor: str, delivery_id: str) -> dict[str, Any]:
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
    created = await request.app[DATABASE].write(redeliver_record, user.email,
                                                request.match_info["id"])
    request.app[DISPATCHER].poke()
    return answer(created, status=201)


def _redeliver_matching(conn: sqlite3.Connection, actor: str, filters: dict[str, str],
                        since: str | None) -> list[str]:
    """Every finished record with a body that matches: all redelivered, or none when more
    than REDELIVER_AT_MOST match (one transaction)."""
    matches = delivery_store.page(conn, filters=filters, since=since, after_seq=None,
                                  limit=REDELIVER_AT_MOST + 1, redeliverable=True)
    if len(matches) > REDELIVER_AT_MOST:
        raise Conflict(f"more than {REDELIVER_AT_MOST} deliveries match: narrow the filters "
                       "(for example with since or requestId)", code="too-many-matches",
                       limit=REDELIVER_AT_MOST)
    return [redeliver_record(conn, actor, found["id"])["id"] for found in matches]


@routes.post("/v1/deliveries/redeliver")
async def redeliver_matching(request: web.Request) -> web.Response:
    user = user_of(request)
    permissions.check_admin(user)
    body = Fields(await read_json(request)).only(["filters"])
    if not isinstance(body.data.get("filters"), dict):
        raise InvalidField("filters", "expected a JSON object")
    given = Fields(body.data["filters"], "filters").only(FILTER_NAMES).data
    for name, value in given.items():
        check_text(f"filters.{name}", value, max_len=256, single_line=True)
    filters, since = parse_filters(given, "filters.")
    ids = await request.app[DATABASE].write(_redeliver_matching, user.email, filters, since)
    if ids:
        request.app[DISPATCHER].poke()
    return answer({"ids": ids})
