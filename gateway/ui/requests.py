"""Pages of requesters and approvers: request access, my requests, one request, the inbox.

Every action is the API's: the same body checks (`operations.check_*`), the same permission
checks and the same `Lifecycle` operations in one write; what the API would answer 4xx is
shown as a page with its message.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aiohttp import web
from multidict import MultiDict

from gateway.api.access_requests import find_visible
from gateway.api.keys import DATABASE, LIFECYCLE, SCHEDULER
from gateway.directory.people import Person
from gateway.errors import GatewayError, InvalidField, NotFound
from gateway.requests import operations, permissions
from gateway.requests.query import encode_cursor, parse_request_query
from gateway.store import catalog as catalog_store
from gateway.store import deliveries as delivery_store
from gateway.store import listing as listing_store
from gateway.store import requests as request_store
from gateway.store import ui as ui_store
from gateway.timeutil import format_time, utcnow
from gateway.ui.keys import VISITOR
from gateway.ui.middleware import error_page
from gateway.ui.render import page, see_other

routes = web.RouteTableDef()
PAGE_SIZE = 20
HANDLED_SHOWN = 5
HANDLED_WINDOW = timedelta(days=7)
USE_CASES_SHOWN = 200
DONE = {
    "created": "Your request is sent: its recipients see it in their inbox.",
    "cancelled": "The request is cancelled.",
    "reason": "The reason is changed.",
    "approved": "Approved: the requester is told.",
    "rejected": "Rejected: the requester is told.",
}


def _user(request: web.Request) -> Person:
    user = request[VISITOR].user
    assert user is not None  # the middleware sent visitors without one to sign in
    return user


async def _page_of(request: web.Request, params: dict[str, str]
                   ) -> tuple[list[dict[str, Any]], str | None]:
    """One page of the API's listing (`GET /v1/resource-access-requests`) for this user."""
    user = _user(request)
    query = parse_request_query(MultiDict(params))
    items, last = await request.config_dict[DATABASE].read(
        listing_store.list_requests, query, email=user.email, admin=user.admin)
    cursor = encode_cursor(query.order_text, last) if last is not None else None
    return items, cursor  # the stored records: with the asked duration, which public() drops


def _cursor(request: web.Request, name: str = "cursor") -> dict[str, str]:
    raw = request.query.get(name)
    return {"cursor": raw} if raw else {}


# --- the inbox -----------------------------------------------------------------------------

@routes.get("/ui/")
async def home(request: web.Request) -> web.Response:
    return see_other("/ui/inbox")


@routes.get("/ui/inbox")
async def inbox(request: web.Request) -> web.Response:
    """Pending requests this user may process, newest first; and what was handled lately."""
    user = _user(request)
    waiting, cursor = await _page_of(request, {
        "actionable": "true", "order": "-createdAt", "limit": str(PAGE_SIZE),
        **_cursor(request)})
    since = format_time(utcnow() - HANDLED_WINDOW)
    handled, _ = await _page_of(request, {
        "all": "true", "recipients": user.email, "processedAt": f"ge:{since}",
        "order": "-processedAt", "limit": str(HANDLED_SHOWN)})
    return page(request, "inbox.html.j2", title="Inbox", waiting=waiting, next_cursor=cursor,
                first_page="cursor" not in request.query, handled=handled,
                done=DONE.get(request.query.get("done", "")))


@routes.post("/ui/requests/{id}/process")
async def process(request: web.Request) -> web.Response:
    form = await request.post()
    decision = form.get("decision")
    body: dict[str, Any] = {"decision": decision, "remarks": _text(form, "remarks")}
    if decision == "approve":
        duration = _duration(form, "duration", "custom_duration")
        if duration and duration != "requested":
            body["duration"] = duration
    back = _text(form, "back") or ""
    try:
        checked = operations.check_process(body)
        lifecycle = request.config_dict[LIFECYCLE]
        processed = await request.config_dict[DATABASE].write(
            lifecycle.process, _user(request), request.match_info["id"], checked)
    except GatewayError as exc:
        return await _refused(request, exc)
    request.config_dict[SCHEDULER].notice(processed["accessExpiresAt"])
    done = "approved" if processed["state"] == "APPROVED" else "rejected"
    if back == "inbox":
        return see_other(f"/ui/inbox?done={done}")
    return see_other(f"/ui/requests/{processed['id']}?done={done}")


# --- my requests ---------------------------------------------------------------------------

@routes.get("/ui/requests")
async def my_requests(request: web.Request) -> web.Response:
    mine, cursor = await _page_of(request, {
        "order": "-createdAt", "limit": str(PAGE_SIZE), **_cursor(request)})
    return page(request, "my_requests.html.j2", title="My requests", requests=mine,
                next_cursor=cursor, first_page="cursor" not in request.query)


async def _visible(request: web.Request) -> dict[str, Any]:
    """The request of the path, if this user may see it (as `GET /v1/.../{id}`)."""
    return await find_visible(request.config_dict[DATABASE], _user(request),
                              request.match_info["id"])


async def _request_page(request: web.Request, *, error: GatewayError | None = None,
                        status: int = 200) -> web.Response:
    user = _user(request)
    found = await _visible(request)
    database = request.config_dict[DATABASE]
    activity = await database.read(request_store.activity, found["id"])
    deliveries = await database.read(delivery_store.for_request, found["id"])
    pending = found["state"] == "PENDING"
    return page(
        request, "request.html.j2", status=status, title=f"Request {found['id']}",
        r=found, activity=activity, deliveries=deliveries, error=error,
        requested_duration=found["requestedDuration"],
        may_process=pending and not permissions.is_requester(user, found)
        and (user.admin or permissions.is_recipient(user, found)),
        may_change=pending and permissions.is_requester(user, found),
        done=DONE.get(request.query.get("done", "")))


async def _refused(request: web.Request, error: GatewayError) -> web.Response:
    """The request's page with the refusal on top; the refusal alone if it may not be seen."""
    try:
        return await _request_page(request, error=error, status=error.status)
    except GatewayError:
        return error_page(request, error)


@routes.get("/ui/requests/{id}")
async def one_request(request: web.Request) -> web.Response:
    return await _request_page(request)


@routes.post("/ui/requests/{id}/cancel")
async def cancel(request: web.Request) -> web.Response:
    lifecycle = request.config_dict[LIFECYCLE]
    try:
        cancelled = await request.config_dict[DATABASE].write(
            lifecycle.cancel, _user(request), request.match_info["id"])
    except GatewayError as exc:
        return await _refused(request, exc)
    return see_other(f"/ui/requests/{cancelled['id']}?done=cancelled")


@routes.post("/ui/requests/{id}/reason")
async def change_reason(request: web.Request) -> web.Response:
    form = await request.post()
    lifecycle = request.config_dict[LIFECYCLE]
    try:
        reason = operations.check_reason({"requestReason": _text(form, "reason")})
        updated = await request.config_dict[DATABASE].write(
            lifecycle.update_reason, _user(request), request.match_info["id"], reason)
    except GatewayError as exc:
        return await _refused(request, exc)
    return see_other(f"/ui/requests/{updated['id']}?done=reason")


# --- request access ------------------------------------------------------------------------

def _text(form: Any, name: str) -> str | None:
    value = form.get(name)
    if not isinstance(value, str):
        return None
    value = value.replace("\r\n", "\n")
    return value if value.strip() else None


def _duration(form: Any, name: str, custom: str) -> str | None:
    chosen = _text(form, name)
    if chosen == "custom":
        value = _text(form, custom)
        if value is None:
            raise InvalidField("duration", "enter a custom duration such as PT2H or P3D")
        return value.strip()
    return chosen


def _targets(user: Person) -> list[tuple[str, str]]:
    """(value, words) of whom this user may ask for: themselves, their teams, their roles."""
    return ([(f"user:{user.email}", f"Me ({user.email})")]
            + [(f"team:{t}", f"Team {t}") for t in user.teams]
            + [(f"role:{r}", f"Role {r}") for r in user.roles])


async def _form_context(request: web.Request, key: str, use_case_key: str | None
                        ) -> dict[str, Any]:
    database = request.config_dict[DATABASE]
    item = await database.read(catalog_store.get, catalog_store.ITEMS, key)
    if item is None:
        raise NotFound("no item with this key", code="item-not-found")
    policy = None
    if item["policyCode"] is not None:
        policy = await database.read(catalog_store.get, catalog_store.POLICIES,
                                     item["policyCode"])
    use_cases: list[dict[str, Any]] = []
    use_case = None
    extra_values: list[str] = []
    extra_label = policy["extraField"] if policy is not None else None
    if policy is not None and policy["reasonFormat"] == "use-case":
        use_cases = await database.read(catalog_store.page, catalog_store.USE_CASES,
                                        after=None, limit=USE_CASES_SHOWN)
        if use_case_key:
            use_case = await database.read(catalog_store.get, catalog_store.USE_CASES,
                                           use_case_key)
        if use_case is not None and policy["extraField"]:
            prop = next((p for p in use_case["properties"]
                         if p["code"] == policy["extraField"]), None)
            extra_values = prop["values"] if prop else []
            extra_label = prop["label"] if prop else extra_label
    return {"item": item, "policy": policy, "use_cases": use_cases, "use_case": use_case,
            "extra_values": extra_values, "extra_label": extra_label,
            "targets": _targets(_user(request))}


@routes.get("/ui/request-access")
async def request_access(request: web.Request) -> web.Response:
    """Without `item`: the items one may ask for (paged); with it: the policy's form."""
    key = request.query.get("item")
    if key is None:
        after = request.query.get("after")
        items = await request.config_dict[DATABASE].read(
            ui_store.requestable_items, after=after, limit=PAGE_SIZE + 1)
        more = len(items) > PAGE_SIZE
        items = items[:PAGE_SIZE]
        return page(request, "items_to_request.html.j2", title="Request access", items=items,
                    next_after=items[-1]["key"] if more else None, first_page=after is None)
    context = await _form_context(request, key, request.query.get("useCase"))
    return page(request, "request_form.html.j2", title="Request access", values={},
                **context)


@routes.post("/ui/request-access")
async def submit_request(request: web.Request) -> web.Response:
    form = await request.post()
    user = _user(request)
    key = _text(form, "item") or ""
    use_case = _text(form, "useCase")
    values = {"reason": _text(form, "reason") or "", "audience": _text(form, "audience") or "",
              "duration": _text(form, "duration"),
              "custom_duration": _text(form, "custom_duration") or "",
              "extra": form.getall("extra", []), "target": _text(form, "target")}
    try:
        target_type, _, target_id = (values["target"] or f"user:{user.email}").partition(":")
        if target_type not in ("user", "team", "role"):
            raise InvalidField("target", "expected yourself, one of your teams or roles")
        permissions.check_target(user, target_type, target_id)
        body: dict[str, Any] = {"resource": key}
        for name in ("reason", "audience"):
            if values[name]:
                body[name] = values[name]
        if use_case:
            body["useCase"] = use_case
        if values["extra"]:
            body["extraInformation"] = {"values": [v for v in values["extra"]
                                                   if isinstance(v, str)]}
        duration = _duration(form, "duration", "custom_duration")
        if duration:
            body["duration"] = duration
        draft = operations.check_create(body)
        lifecycle = request.config_dict[LIFECYCLE]
        created = await request.config_dict[DATABASE].write(
            lifecycle.create, user, target_type, target_id, draft)
    except GatewayError as exc:
        context = await _form_context(request, key, use_case)
        return page(request, "request_form.html.j2", status=exc.status,
                    title="Request access", values=values, error=exc, **context)
    request.config_dict[SCHEDULER].notice(created["expiresAt"])
    return see_other(f"/ui/requests/{created['id']}?done=created")

