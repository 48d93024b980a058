"""The JSON webhook body (SPEC §4), built from data and serialised once: those exact bytes are
signed and sent. URLs go out as they are (no HTML escaping); every key is always present."""

from __future__ import annotations

from typing import Any

import orjson

from gateway.hooks.payload import HookContext

WEBHOOK_VERSION = "1.0"


def _properties(props: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"code": p["code"], "label": p["label"], "value": list(p["values"])} for p in props]


def webhook_document(ctx: HookContext) -> dict[str, Any]:
    request, item, use_case = ctx.request, ctx.item, ctx.use_case
    extra = ctx.extra_information
    return {
        "webhookVersion": WEBHOOK_VERSION,
        "requesterEmail": request["requestedBy"],
        "timestamp": ctx.timestamp,
        "policyCode": request["policyCode"],
        "status": ctx.status,
        "approverEmail": request["processedBy"],
        "reasonFreeText": request["reason"],
        "reasonUseCase": None if use_case is None else {
            "name": use_case["name"],
            "key": use_case["key"],
            "summary": use_case["summary"],
            "properties": _properties(use_case["properties"]),
            "responsibilities": [
                {"roleName": r["label"], "roleCode": r["code"], "userEmail": r["userEmail"]}
                for r in use_case["responsibilities"]
            ],
        },
        "reasonUseCaseExtraInformation": None if extra is None else {
            "propertyName": extra["name"],
            "propertyCode": extra["code"],
            "propertyValues": extra["values"],
        },
        "itemInfo": {
            "technicalName": item["technicalName"],
            "key": item["key"],
            "name": item["name"],
            "url": item["url"],
            "summary": item["summary"],
            "properties": _properties(item["properties"]),
        },
        "accessRequestKey": request["id"],
    }


def render_webhook(ctx: HookContext) -> bytes:
    return orjson.dumps(webhook_document(ctx))
