"""Handlers for policies, items and use cases (reads: any user; writes: admins)."""

from __future__ import annotations

from aiohttp import web

from gateway.api.http import answer, read_json, user_of
from gateway.api.keys import CATALOG, DATABASE, DISPATCHER
from gateway.catalog.changes import ITEM, KINDS, POLICY, USE_CASE, Kind, public
from gateway.catalog.rules import check_policy_link
from gateway.requests import permissions
from gateway.requests.query import check_params, parse_limit
from gateway.store import catalog as catalog_store

routes = web.RouteTableDef()
_PATHS = {POLICY: ("/v1/policies", "code"), ITEM: ("/v1/items", "key"),
          USE_CASE: ("/v1/use-cases", "key")}


def _kind(request: web.Request) -> Kind:
    return KINDS[request.match_info.route.name.split(":")[0]]


def _key(request: web.Request) -> str:
    kind = _kind(request)
    return request.match_info[_PATHS[kind][1]]


async def list_entries(request: web.Request) -> web.Response:
    kind = _kind(request)
    check_params(request.query, ("cursor", "limit"))
    limit = parse_limit(request.query)
    after = request.query.get("cursor")
    rows = await request.app[DATABASE].read(catalog_store.page, kind.table, after=after,
                                            limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    cursor = rows[-1][kind.key_field] if more and rows else None
    return answer({"items": [public(kind, r) for r in rows], "nextCursor": cursor})


async def get_entry(request: web.Request) -> web.Response:
    kind = _kind(request)
    changes = request.app[CATALOG]
    found = await request.app[DATABASE].read(changes.get_existing, kind, _key(request))
    return answer(public(kind, found))


async def create_entry(request: web.Request) -> web.Response:
    user = user_of(request)
    permissions.check_admin(user)
    body = await read_json(request)
    changes = request.app[CATALOG]
    created = await request.app[DATABASE].write(changes.create, _kind(request), user.email, body)
    return answer(created, status=201)


async def replace_entry(request: web.Request) -> web.Response:
    user = user_of(request)
    permissions.check_admin(user)
    body = await read_json(request)
    changes = request.app[CATALOG]
    replaced = await request.app[DATABASE].write(changes.replace, _kind(request), user.email,
                                                 _key(request), body)
    if _kind(request) is POLICY:
        request.app[DISPATCHER].forget_secrets()
    return answer(replaced)


async def delete_entry(request: web.Request) -> web.Response:
    user = user_of(request)
    permissions.check_admin(user)
    changes = request.app[CATALOG]
    await request.app[DATABASE].write(changes.delete, _kind(request), user.email, _key(request))
    if _kind(request) is POLICY:
        request.app[DISPATCHER].forget_secrets()
    return web.Response(status=204)


async def link_policy(request: web.Request) -> web.Response:
    user = user_of(request)
    permissions.check_admin(user)
    code = check_policy_link(await read_json(request))
    changes = request.app[CATALOG]
    item = await request.app[DATABASE].write(changes.link_policy, user.email,
                                             request.match_info["key"], code)
    return answer(item)


def add_routes(app: web.Application) -> None:
    router = app.router
    for kind, (base, key) in _PATHS.items():
        router.add_get(base, list_entries, name=f"{kind.name}:list")
        router.add_post(base, create_entry, name=f"{kind.name}:create")
        one = f"{base}/{{{key}}}"
        router.add_get(one, get_entry, name=f"{kind.name}:get")
        router.add_put(one, replace_entry, name=f"{kind.name}:replace")
        router.add_delete(one, delete_entry, name=f"{kind.name}:delete")
    router.add_put("/v1/items/{key}/policy", link_policy, name="item:policy")
