"""What each verb does: which API calls, and what it prints.

A verb returns its exit status: 0 done, 1 the API refused (SPEC §11). `ApiError` from a
single call propagates to `main`, which words it; verbs over several ids catch it per id, go
on, and list each failure. `Unreachable` always propagates: exit 2, there is nothing to go on
with.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from gateway.client import render
from gateway.client.http import Api, ApiError, Query, segment
from gateway.client.table import Style

REQUESTS = "/v1/resource-access-requests"


@dataclass
class Context:
    api: Api
    json: bool
    out: IO[str] = field(default_factory=lambda: sys.stdout)
    err: IO[str] = field(default_factory=lambda: sys.stderr)

    def __post_init__(self) -> None:
        self.style = Style(self.out)

    def show(self, document: Any, text: Callable[[], str]) -> None:
        """The API's document with `--json`, else the text made from it."""
        print(json.dumps(document, ensure_ascii=False) if self.json else text(), file=self.out)

    def refused(self, doing: str, error: ApiError) -> None:
        print(refusal(doing, error), file=self.err)


def refusal(doing: str, error: ApiError) -> str:
    """`gateway: cancel 3: invalid-transition: a CANCELLED request cannot ...`, one line,
    and the error's details that the message does not already say (`allowed: ...`)."""
    line = f"gateway: {doing}: {error.code}: {error.message}"
    said = []
    for key, value in error.details.items():
        text = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
        if text not in error.message:
            said.append(f"{key}: {text}")
    return line + (f" ({'; '.join(said)})" if said else "")


def _path(request_id: str, tail: str = "") -> str:
    return f"{REQUESTS}/{segment(request_id)}{tail}"


def _for_each(ctx: Context, verb: str, ids: Sequence[str],
              call: Callable[[str], dict[str, Any]],
              line: Callable[[dict[str, Any]], str]) -> int:
    """One call per id, in order; a refusal is listed and the next id is still done."""
    failed = []
    for one in ids:
        try:
            document = call(one)
        except ApiError as exc:
            ctx.refused(f"{verb} {one}", exc)
            failed.append(one)
            continue
        ctx.show(document, lambda d=document: line(d))
    if failed and len(ids) > 1:
        print(f"gateway: {verb}: {len(failed)} of {len(ids)} failed: {', '.join(failed)}",
              file=ctx.err)
    return 1 if failed else 0


def _page_through(ctx: Context, path: str, query: Query, limit: int, page: int,
                  cursor: str | None) -> dict[str, Any]:
    """Follow `nextCursor` until `limit` rows; the answer keeps the API's shape, with the
    cursor after the last row shown (null when there is nothing more)."""
    items: list[Any] = []
    while True:
        page_query = [*query, ("limit", str(min(limit - len(items), page)))]
        if cursor:
            page_query.append(("cursor", cursor))
        answer = ctx.api.call("GET", path, query=page_query)
        items += answer["items"]
        cursor = answer.get("nextCursor")
        if not cursor or len(items) >= limit or not answer["items"]:
            return {"items": items, "nextCursor": cursor}


def _listing(ctx: Context, path: str, query: Query, args: argparse.Namespace,
             text: Callable[[list[Any]], str], nouns: tuple[str, str]) -> int:
    answer = _page_through(ctx, path, query, args.limit, args.page_size, args.cursor)
    if ctx.json:
        ctx.show(answer, str)
        return 0
    items = answer["items"]
    if items:
        print(text(items), file=ctx.out)
    more = f"; more with --cursor {answer['nextCursor']}" if answer["nextCursor"] else ""
    print(f"{len(items)} {nouns[len(items) != 1]}{more}", file=ctx.err)
    return 0


def list_requests(ctx: Context, args: argparse.Namespace) -> int:
    query: Query = list(args.filters)
    if args.actionable:
        query.append(("actionable", "true"))
    if args.all:
        query.append(("all", "true"))
    if args.order:
        query.append(("order", args.order))
    return _listing(ctx, REQUESTS, query, args,
                    lambda items: render.requests_table(items, ctx.style),
                    ("request", "requests"))


def list_deliveries(ctx: Context, args: argparse.Namespace) -> int:
    return _listing(ctx, "/v1/deliveries", list(args.filters), args,
                    lambda items: render.deliveries_table(items, ctx.style),
                    ("delivery", "deliveries"))


def request_access(ctx: Context, args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"action": args.action, "resource": args.resource}
    optional = {"reason": args.reason, "useCase": args.use_case, "audience": args.audience,
                "expiration": args.expiration, "duration": args.duration, "scope": args.scope}
    body.update({k: v for k, v in optional.items() if v is not None})
    if args.extra:
        body["extraInformation"] = {"values": args.extra}
    for flag in ("shareable", "cascades"):
        if getattr(args, flag):
            body[flag] = True
    created = ctx.api.call("POST", f"/v1/{args.kind}/{segment(args.id)}/request-access",
                           body=body)
    ctx.show(created, lambda: render.one_line(created, ctx.style))
    return 0


def get_request(ctx: Context, args: argparse.Namespace) -> int:
    request = ctx.api.call("GET", _path(args.id))
    if ctx.json:
        ctx.show(request, str)
        return 0
    activity = ctx.api.call("GET", _path(args.id, "/activity"))["items"]
    deliveries = ctx.api.call("GET", _path(args.id, "/deliveries"))["items"]
    sections = [render.request_detail(request, ctx.style),
                ctx.style.paint("Activity", "bold") + "\n"
                + render.activity_table(activity, ctx.style),
                ctx.style.paint("Deliveries", "bold") + "\n"
                + (render.deliveries_table(deliveries, ctx.style) if deliveries else "none")]
    print("\n\n".join(sections), file=ctx.out)
    return 0


def set_reason(ctx: Context, args: argparse.Namespace) -> int:
    updated = ctx.api.call("PUT", _path(args.id), body={"requestReason": args.request_reason})
    ctx.show(updated, lambda: render.one_line(updated, ctx.style))
    return 0


def cancel(ctx: Context, args: argparse.Namespace) -> int:
    return _for_each(ctx, "cancel", args.ids, lambda i: ctx.api.call("DELETE", _path(i)),
                     lambda d: render.one_line(d, ctx.style))


def _decide(ctx: Context, verb: str, ids: Sequence[str], body: dict[str, Any]) -> int:
    sent = {k: v for k, v in body.items() if v is not None}
    return _for_each(ctx, verb, ids,
                     lambda i: ctx.api.call("POST", _path(i, "/process"), body=sent),
                     lambda d: render.one_line(d, ctx.style))


def approve(ctx: Context, args: argparse.Namespace) -> int:
    return _decide(ctx, "approve", args.ids,
                   {"decision": "approve", "remarks": args.remarks, "duration": args.duration,
                    "expiration": args.expiration})


def reject(ctx: Context, args: argparse.Namespace) -> int:
    return _decide(ctx, "reject", args.ids, {"decision": "reject", "remarks": args.remarks})


def activity(ctx: Context, args: argparse.Namespace) -> int:
    answer = ctx.api.call("GET", _path(args.id, "/activity"))
    ctx.show(answer, lambda: render.activity_table(answer["items"], ctx.style))
    return 0


def request_deliveries(ctx: Context, args: argparse.Namespace) -> int:
    answer = ctx.api.call("GET", _path(args.id, "/deliveries"))
    ctx.show(answer, lambda: render.deliveries_table(answer["items"], ctx.style))
    return 0


def fulfil(ctx: Context, args: argparse.Namespace) -> int:
    body = {"status": args.status, **({"message": args.message} if args.message else {})}
    answer = ctx.api.call("POST", _path(args.id, "/fulfillment"), body=body)
    ctx.show(answer, lambda: render.one_line(answer, ctx.style))
    return 0


def get_delivery(ctx: Context, args: argparse.Namespace) -> int:
    if args.body and ctx.json:
        args.leaf.error("--body prints the body alone: not with --json")
    record = ctx.api.call("GET", f"/v1/deliveries/{segment(args.id)}")
    if args.body:
        return _raw_body(ctx, record)
    ctx.show(record, lambda: render.delivery_detail(record, ctx.style))
    return 0


def _raw_body(ctx: Context, record: dict[str, Any]) -> int:
    """The body exactly as it was sent (UTF-8, no newline added): what its signature covers."""
    body = (record.get("request") or {}).get("body")
    if body is None:
        print(f"gateway: get {record['id']}: the delivery has no body (its rendering failed)",
              file=ctx.err)
        return 1
    buffer = getattr(ctx.out, "buffer", None)
    if buffer is None:
        ctx.out.write(body)
    else:
        ctx.out.flush()
        buffer.write(body.encode("utf-8"))
        buffer.flush()
    return 0


REDELIVER_AT_MOST = 1000  # POST /v1/deliveries/redeliver's bound (SPEC §9)


def redeliver(ctx: Context, args: argparse.Namespace) -> int:
    """With ids, one `POST /v1/deliveries/{id}/redeliver` per id: each id gets its own answer
    or refusal. With filters, one `POST /v1/deliveries/redeliver` (a gateway without it: the
    matching records listed, then one call per record)."""
    if args.ids and args.filters:
        args.leaf.error("give delivery ids or filters, not both")
    if args.ids:
        return _for_each(ctx, "redeliver", args.ids,
                         lambda i: ctx.api.call("POST",
                                                f"/v1/deliveries/{segment(i)}/redeliver"),
                         lambda d: f"{d['id']}  {d['state']}  redelivery of "
                                   f"{d['redeliveryOf']} (request {d['requestId']}, "
                                   f"{d['channel']} to {d['destination']})")
    if not args.filters:
        args.leaf.error("give one or more delivery ids, or filters (e.g. --state failed)")
    filters = dict(args.filters)
    try:
        answer = ctx.api.call("POST", "/v1/deliveries/redeliver", body={"filters": filters})
    except ApiError as exc:
        if exc.status not in (404, 405):
            raise
        return _redeliver_listed(ctx, filters)
    return _show_redelivered(ctx, answer["ids"], 0)


def _redeliver_listed(ctx: Context, filters: dict[str, str]) -> int:
    """For a gateway without the filtered endpoint: the same matches, one call each."""
    listed = _page_through(ctx, "/v1/deliveries", list(filters.items()), sys.maxsize, 500,
                           None)["items"]
    matches = [d["id"] for d in listed if d["state"] not in ("queued", "sending")]
    if len(matches) > REDELIVER_AT_MOST:
        raise ApiError(409, "too-many-matches",
                       f"more than {REDELIVER_AT_MOST} deliveries match: narrow the filters")
    ids, failed = [], 0
    for one in matches:
        try:
            ids.append(ctx.api.call("POST", f"/v1/deliveries/{segment(one)}/redeliver")["id"])
        except ApiError as exc:
            ctx.refused(f"redeliver {one}", exc)
            failed += 1
    return _show_redelivered(ctx, ids, failed)


def _show_redelivered(ctx: Context, ids: list[str], failed: int) -> int:
    if ctx.json:
        ctx.show({"ids": ids}, str)
    elif ids:
        print("\n".join(ids), file=ctx.out)
    print(f"{len(ids)} redelivered" + (f", {failed} refused" if failed else ""),
          file=ctx.err)
    return 1 if failed else 0


TOKENS = "/v1/tokens"


def create_token(ctx: Context, args: argparse.Namespace) -> int:
    """The token alone on stdout (`export GATEWAY_TOKEN=$(gateway token create ci)`), what
    it is on stderr; `--json`: the API's answer, token included."""
    body = {"name": args.name,
            **({"expiresIn": args.expires_in} if args.expires_in is not None else {})}
    created = ctx.api.call("POST", TOKENS, body=body)
    ctx.show(created, lambda: created["token"])
    if not ctx.json:
        print(f"token {render.token_line(created)}: copy it now, it is not shown again",
              file=ctx.err)
    return 0


def list_tokens(ctx: Context, args: argparse.Namespace) -> int:
    return _listing(ctx, TOKENS, list(args.filters), args,
                    lambda items: render.tokens_table(items, ctx.style), ("token", "tokens"))


def revoke_tokens(ctx: Context, args: argparse.Namespace) -> int:
    return _for_each(ctx, "revoke", args.ids,
                     lambda i: ctx.api.call("DELETE", f"{TOKENS}/{segment(i)}"),
                     lambda d: f"revoked {render.token_line(d)}")


VERBS: dict[str, Callable[[Context, argparse.Namespace], int]] = {
    f.__name__: f for f in (list_requests, list_deliveries, request_access, get_request,
                            set_reason, cancel, approve, reject, activity, request_deliveries,
                            fulfil, get_delivery, redeliver, create_token, list_tokens,
                            revoke_tokens)
}
