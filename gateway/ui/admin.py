"""Admins' pages: the delivery log with Redeliver, and policies and items to read and edit.

Redelivery and catalog writes are the API's operations (`POST /v1/deliveries/{id}/redeliver`,
`PUT /v1/policies/{code}`, `PUT /v1/items/{key}`), behind the same admin check.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from gateway.api.deliveries import FILTERS, redeliver_record
from gateway.api.keys import CATALOG, DATABASE, DISPATCHER
from gateway.catalog.changes import ITEM, POLICY, Kind, public
from gateway.errors import GatewayError, InvalidField
from gateway.requests import permissions
from gateway.store import catalog as catalog_store
from gateway.store import deliveries as delivery_store
from gateway.ui.keys import VISITOR
from gateway.ui.names import names_for
from gateway.ui.render import page, see_other

routes = web.RouteTableDef()
PAGE_SIZE = 50
SNIPPET_SHOWN = 200


def _admin(request: web.Request) -> str:
    user = request[VISITOR].user
    assert user is not None
    permissions.check_admin(user)
    return user.email


def _filters(request: web.Request) -> dict[str, str]:
    """The filters of `GET /v1/deliveries`, checked the same way; empty ones ignored."""
    filters: dict[str, str] = {}
    for name, allowed in FILTERS.items():
        value = request.query.get(name, "")
        if value:
            if value not in allowed:
                raise InvalidField(name, "expected one of " + ", ".join(allowed))
            filters[name] = value
    request_id = request.query.get("requestId", "").strip()
    if request_id:
        if not request_id.isdecimal() or len(request_id) > 18:
            raise InvalidField("requestId", "expected a request id (digits)")
        filters["requestId"] = request_id
    return filters


@routes.get("/ui/deliveries")
async def deliveries(request: web.Request) -> web.Response:
    _admin(request)
    filters = _filters(request)
    before = request.query.get("before", "")
    before_seq = int(before) if before.isdecimal() and len(before) <= 18 else None
    records = await request.config_dict[DATABASE].read(
        delivery_store.newest_first, filters=filters, before_seq=before_seq,
        limit=PAGE_SIZE + 1)
    more = len(records) > PAGE_SIZE
    records = records[:PAGE_SIZE]
    done = request.query.get("done") == "redelivered"
    return page(request, "deliveries.html.j2", title="Deliveries", records=records,
                filters=filters, choices=FILTERS, first_page=before_seq is None,
                next_before=records[-1]["seq"] if more and records else None,
                snippet_shown=SNIPPET_SHOWN, done=done)


@routes.post("/ui/deliveries/{id}/redeliver")
async def redeliver(request: web.Request) -> web.Response:
    actor = _admin(request)
    created = await request.config_dict[DATABASE].write(redeliver_record, actor,
                                                        request.match_info["id"])
    request.config_dict[DISPATCHER].poke()
    return see_other(f"/ui/deliveries?requestId={created['requestId']}&done=redelivered")


# --- policies and items ---------------------------------------------------------------------

_KINDS = {"policies": (POLICY, "Policies"), "items": (ITEM, "Items")}


def _kind(request: web.Request) -> tuple[Kind, str, str]:
    section = request.match_info["section"]
    kind, title = _KINDS[section]
    return kind, title, section


@routes.get(r"/ui/{section:policies|items}")
async def catalog_list(request: web.Request) -> web.Response:
    _admin(request)
    kind, title, section = _kind(request)
    after = request.query.get("after")
    rows = await request.config_dict[DATABASE].read(catalog_store.page, kind.table,
                                                    after=after, limit=PAGE_SIZE + 1)
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    names = await names_for(request.config_dict[DATABASE],
                            policies=[r["policyCode"] for r in rows if r.get("policyCode")])
    return page(request, "catalog_list.html.j2", title=title, section=section, kind=kind,
                rows=[public(kind, r) for r in rows], names=names, first_page=after is None,
                next_after=rows[-1][kind.key_field] if more else None)


async def _entry_page(request: web.Request, *, text: str | None = None,
                      error: GatewayError | None = None, saved: bool = False,
                      status: int = 200) -> web.Response:
    kind, title, section = _kind(request)
    key = request.match_info["key"]
    found: dict[str, Any] = await request.config_dict[DATABASE].read(
        request.config_dict[CATALOG].get_existing, kind, key)
    shown = public(kind, found)
    if text is None:
        text = json.dumps(shown, indent=2, ensure_ascii=False)
    return page(request, "catalog_entry.html.j2", status=status,
                title=f"{title}: {shown.get('name') or key}",
                section=section, kind=kind, key=key, entry=shown, text=text, error=error,
                saved=saved)


@routes.get(r"/ui/{section:policies|items}/{key}")
async def catalog_entry(request: web.Request) -> web.Response:
    _admin(request)
    return await _entry_page(request, saved="done" in request.query)


@routes.post(r"/ui/{section:policies|items}/{key}")
async def catalog_save(request: web.Request) -> web.Response:
    actor = _admin(request)
    kind = _kind(request)[0]
    form = await request.post()
    text = form.get("entry")
    text = text if isinstance(text, str) else ""
    try:
        try:
            body = json.loads(text)
        except ValueError as exc:
            raise InvalidField("entry", f"not valid JSON ({exc.msg}, line {exc.lineno})") \
                from None
        await request.config_dict[DATABASE].write(
            request.config_dict[CATALOG].replace, kind, actor, request.match_info["key"],
            body)
    except GatewayError as exc:
        return await _entry_page(request, text=text, error=exc, status=exc.status)
    if kind is POLICY:
        request.config_dict[DISPATCHER].forget_secrets()
    return see_other(f"{request.rel_url.raw_path}?done")
