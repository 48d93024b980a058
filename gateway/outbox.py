"""The outbox (SPEC §6): a transition listener that writes one delivery record per channel the
transition triggers, inside the transition's own transaction.

The payload is rendered here, once, so that the record holds exactly what will be sent (and a
redelivery sends the same body). A mailhook that cannot be rendered valid is recorded `failed`
with kind `render` and never sent. The item's *current* policy decides: an item whose policy
was removed causes no deliveries.
"""

from __future__ import annotations

import hashlib
import sqlite3
import uuid
from typing import Any

from gateway.config import MailConfig
from gateway.hook_payload import HookContext
from gateway.mail_message import header_text
from gateway.mailhook import MailhookRenderer, RenderError
from gateway.store import catalog
from gateway.store import deliveries as delivery_store
from gateway.webhook_body import render_webhook


def new_delivery_id() -> str:
    return uuid.uuid4().hex


def mail_subject(prefix: str, item_name: str) -> str:
    return header_text(f"{prefix} Data Access Request on Item {item_name}")


class Outbox:
    def __init__(self, mail: MailConfig, renderer: MailhookRenderer) -> None:
        self._mail = mail
        self._renderer = renderer

    def __call__(self, conn: sqlite3.Connection, before: dict[str, Any] | None,
                 after: dict[str, Any], at: str) -> None:
        event = after["state"].lower()
        item = catalog.get(conn, catalog.ITEMS, after["resource"])
        if item is None or item["policyCode"] is None:
            return
        policy = catalog.get(conn, catalog.POLICIES, item["policyCode"])
        if policy is None:
            return
        hook = policy["hook"]
        if hook["type"] == "none" or event not in hook["statuses"]:
            return
        use_case = None
        if after["useCase"]:
            use_case = catalog.get(conn, catalog.USE_CASES, after["useCase"])
        ctx = HookContext(request=after, item=item, use_case=use_case,
                          extra_field=policy["extraField"], event=event, timestamp=at)
        record: dict[str, Any] = {
            "id": new_delivery_id(), "requestId": after["id"], "event": event,
            "policyCode": policy["code"], "state": "queued", "createdAt": at,
        }
        if hook["type"] == "webhook":
            body = render_webhook(ctx).decode("utf-8")
            record.update(channel="webhook", destination=hook["url"], payload=body,
                          meta={"event": event})
        else:
            record.update(channel="email", destination=hook["email"], meta={
                "subject": mail_subject(self._mail.subject_prefix, item["name"]),
                "status": ctx.status, "requestKey": after["id"]})
            try:
                record["payload"] = self._renderer.render(ctx)
            except RenderError as exc:
                record.update(state="failed", finishedAt=at, payload=None,
                              error={"kind": "render", "message": str(exc)[:500]})
        if record.get("payload") is not None:
            record["payloadSha256"] = hashlib.sha256(record["payload"].encode()).hexdigest()
        delivery_store.insert(conn, record)


def redelivery(conn: sqlite3.Connection, original: dict[str, Any], at: str) -> dict[str, Any]:
    """A new queued record with the same body, linked to the original (SPEC §6)."""
    record = {k: original[k] for k in ("requestId", "event", "channel", "destination",
                                       "policyCode", "payload", "payloadSha256", "meta")}
    record.update(id=new_delivery_id(), state="queued", createdAt=at,
                  redeliveryOf=original["id"])
    delivery_store.insert(conn, record)
    found = delivery_store.get(conn, record["id"])
    assert found is not None
    return found
