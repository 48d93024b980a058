"""The `servicenow` mail profile's body (SPEC §5): one `name:value` line per field, so that an
inbound email action reads `email.body.<name>`; the XML document travels as an attachment.

A value is always one line: every line break or other control character in it becomes a
space, so that no text a requester typed can start a line of its own (a forged `status:`).
"""

from __future__ import annotations

import re

from gateway.hooks.payload import HookContext

FIELDS = ("requester", "approver", "accessRequestKey", "policyCode", "status", "timestamp",
          "itemKey", "itemName", "itemUrl", "purpose", "audience", "useCase",
          "extraInformation")
_BREAKS = re.compile("[\x00-\x1f\x7f\x85\u2028\u2029]+")


def one_line(value: str) -> str:
    return _BREAKS.sub(" ", value).strip()


def render_lines(ctx: HookContext) -> str:
    request, item = ctx.request, ctx.item
    extra = ctx.extra_information
    values = {
        "requester": request["requestedBy"],
        "approver": request["processedBy"] or "",
        "accessRequestKey": request["id"],
        "policyCode": request["policyCode"] or "",
        "status": ctx.status,
        "timestamp": ctx.timestamp,
        "itemKey": item["key"],
        "itemName": item["name"],
        "itemUrl": item.get("url") or "",
        "purpose": request["reason"] or "",
        "audience": request["audience"] or "",
        "useCase": request["useCase"] or "",
        "extraInformation": ", ".join(extra["values"]) if extra else "",
    }
    return "".join(f"{name}:{one_line(values[name])}\n" for name in FIELDS)
