"""Handlers for access requests: creation, listing, reading, and every transition."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.api.http import answer, read_json, user_of
from gateway.api.keys import DATABASE, LIFECYCLE, SCHEDULER
from gateway.errors import Forbidden, NotFound
from gateway.requests import operations as access_requests
from gateway.requests import permissions
from gateway.requests.query import encode_cursor, parse_request_query
from gateway.requests.transitions import public
from gateway.store import listing as listing_store
from gateway.store import requests as request_store

routes = web.RouteTableDef()


async def _create(request: web.Request, target_type: str) -> web.Response:
    user = user_of(request)
    target_id = request.match_info["id"]
    permissions.check_target(user, target_type, target_id)
    draft = access_requests.check_create(await read_json(request))
    lifecycle = request.app[LIFECYCLE]
    created = await request.app[DATABASE].write(lifecycle.create, user, target_type, target_id,
                                                draft)
    request.app[SCHEDULER].notice(created["expiresAt"])
    return answer(created, status=201)


@routes.post("/v1/user/{id}/request-access")
async def request_for_user(request: web.Request) -> web.Response:
    return await _create(request, "user")


@routes.post("/v1/team/{id}/request-access")
async def request_for_team(request: web.Request) -> web.Response:
    return await _create(request, "team")


@routes.post("/v1/role/{id}/request-access")
async def request_for_role(request: web.Request) -> web.Response:
    return await _create(request, "role")


@routes.get("/v1/resource-access-requests")
async def list_requests(request: web.Request) -> web.Response:
    user = user_of(request)
    query = parse_request_query(request.query)
    if query.scope == "all" and not (user.admin or user.integration):
        raise Forbidden("all=true is for admins and integration users")
    items, last = await request.app[DATABASE].read(
        listing_store.list_requests, query, email=user.email, admin=user.admin
    )
    cursor = encode_cursor(query.order_text, last) if last is not None else None
    return answer({"items": [public(r) for r in items], "nextCursor": cursor})


async def find_visible(database: Any, user: Any, request_id: str) -> dict:
    """The request, if `user` may see it: the one check behind the API and the pages."""
    found = await database.read(request_store.get, request_id)
    if found is None:
        raise NotFound(f"no access request {request_id}", code="request-not-found")
    permissions.check_view(user, found)
    return found


async def visible_request(request: web.Request) -> dict:
    return await find_visible(request.app[DATABASE], user_of(request),
                              request.match_info["id"])


@routes.get("/v1/resource-access-requests/{id}")
async def get_request(request: web.Request) -> web.Response:
    return answer(public(await visible_request(request)))


@routes.put("/v1/resource-access-requests/{id}")
async def update_reason(request: web.Request) -> web.Response:
    reason = access_requests.check_reason(await read_json(request))
    lifecycle = request.app[LIFECYCLE]
    updated = await request.app[DATABASE].write(
        lifecycle.update_reason, user_of(request), request.match_info["id"], reason
    )
    return answer(updated)


@routes.delete("/v1/resource-access-requests/{id}")
async def cancel(request: web.Request) -> web.Response:
    lifecycle = request.app[LIFECYCLE]
    cancelled = await request.app[DATABASE].write(
        lifecycle.cancel, user_of(request), request.match_info["id"]
    )
    return answer(cancelled)


@routes.post("/v1/resource-access-requests/{id}/process")
async def process(request: web.Request) -> web.Response:
    decision = access_requests.check_process(await read_json(request))
    lifecycle = request.app[LIFECYCLE]
    processed = await request.app[DATABASE].write(
        lifecycle.process, user_of(request), request.match_info["id"], decision
    )
    request.app[SCHEDULER].notice(processed["accessExpiresAt"])
    return answer(processed)


@routes.post("/v1/resource-access-requests/{id}/fulfillment")
async def fulfil(request: web.Request) -> web.Response:
    permissions.check_fulfiller(user_of(request))
    report = access_requests.check_fulfilment(await read_json(request))
    lifecycle = request.app[LIFECYCLE]
    fulfilled = await request.app[DATABASE].write(
        lifecycle.fulfil, user_of(request), request.match_info["id"], report
    )
    return answer(fulfilled)


@routes.get("/v1/resource-access-requests/{id}/activity")
async def activity(request: web.Request) -> web.Response:
    found = await visible_request(request)
    entries = await request.app[DATABASE].read(request_store.activity, found["id"])
    return answer({"items": entries})
