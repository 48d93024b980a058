"""Human notifications and mail threading (SPEC §7), through a real SMTP server."""

from __future__ import annotations

import asyncio
import copy
import json
import time
from email.header import decode_header, make_header
from email.message import Message
from typing import Any

import pytest

from gateway.timeutil import parse_time
from tests.conftest import (
    CHURN,
    EMAILS,
    HOOK_SECRET,
    ORDERS,
    PROFILE,
    Gateway,
    hooked_sections,
    open_store,
)

REQ = "/v1/resource-access-requests"


def notified(receiver: Any, mail_sink: Any, **extra: Any) -> dict[str, Any]:
    """Both policies send notifications; uc-policy also sends its mailhook to tickets@."""
    sections = hooked_sections(receiver, mail_sink, **extra)
    for policy in sections["policies"]:
        policy["emailNotifications"] = True
    sections["policies"][0]["hook"] = {"type": "none"}
    return sections


def subject(message: Message) -> str:
    return str(make_header(decode_header(message["Subject"])))


def mails(mail_sink: Any, request_id: str) -> list[tuple[list[str], Message]]:
    return [(env.rcpt_tos, msg) for env, msg in mail_sink.messages
            if msg["X-Access-Request-Key"] == request_id]


def parts(message: Message) -> dict[str, str]:
    assert message.get_content_type() == "multipart/alternative"
    found = {}
    for part in message.get_payload():
        assert part.get_content_charset() == "utf-8"
        found[part.get_content_type()] = part.get_payload(decode=True).decode("utf-8")
    assert list(found) == ["text/plain", "text/html"]
    return found


async def settle(gw: Gateway) -> None:
    """Wait until no delivery is queued or sending."""
    for _ in range(200):
        page = await gw.get("/v1/deliveries?limit=500", user="admin")
        if all(d["state"] not in ("queued", "sending") for d in page["items"]):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("deliveries did not settle")


async def test_each_event_reaches_the_right_people(start_gateway, receiver, mail_sink) -> None:
    gw = await start_gateway(**notified(receiver, mail_sink))
    created = await gw.create(ORDERS)
    await settle(gw)
    [(to, message)] = mails(mail_sink, created["id"])
    assert to == [EMAILS["approver"]]
    assert subject(message) == f"[Gateway] Access requested: read-data on Orders (#{created['id']})"
    text = parts(message)["text/plain"]
    assert EMAILS["requester"] in text and "Monthly revenue report." in text
    assert f"/v1/resource-access-requests/{created['id']}/process" in text
    assert f"Decide by:    {created['expiresAt']} (UTC)" in text
    await gw.process(created["id"], remarks="Go ahead", duration="PT4H")
    await settle(gw)
    [_, (to, message)] = mails(mail_sink, created["id"])
    assert to == [EMAILS["requester"]]  # the approver is not told that they approved
    assert subject(message).startswith("[Gateway] Approved: read-data on Orders")
    text = parts(message)["text/plain"]
    approved = await gw.get(f"{REQ}/{created['id']}")
    assert "Go ahead" in text and EMAILS["approver"] in text
    assert f"Access ends:  {approved['accessExpiresAt']} (UTC)" in text

    rejected = await gw.create(ORDERS, action="write-data")
    await gw.process(rejected["id"], "reject", remarks="Not now")
    cancelled = await gw.create(ORDERS, action="delete-data")
    await gw.call("DELETE", f"{REQ}/{cancelled['id']}")
    await settle(gw)
    assert [(to, subject(m).split(":")[0]) for to, m in mails(mail_sink, rejected["id"])] == [
        ([EMAILS["approver"]], "[Gateway] Access requested"),
        ([EMAILS["requester"]], "[Gateway] Rejected")]
    assert [(to, subject(m).split(":")[0]) for to, m in mails(mail_sink, cancelled["id"])] == [
        ([EMAILS["approver"]], "[Gateway] Access requested"),
        ([EMAILS["approver"]], "[Gateway] Cancelled")]


async def test_granted_and_fulfilment_errors_mail_nobody(start_gateway, receiver,
                                                        mail_sink) -> None:
    gw = await start_gateway(**notified(receiver, mail_sink))
    created = await gw.create(ORDERS)
    await gw.process(created["id"])
    await gw.call("POST", f"{REQ}/{created['id']}/fulfillment", user="integration",
                  json={"status": "granted"})
    await settle(gw)
    assert len(mails(mail_sink, created["id"])) == 2  # submitted, approved


async def test_expired_and_revoked_tell_the_requester(start_gateway, receiver,
                                                      mail_sink) -> None:
    gw = await start_gateway(**notified(receiver, mail_sink, requests={"pending_ttl": "PT1S"}))
    expiring = await gw.create(ORDERS)
    granted = await gw.create(ORDERS, action="write-data", duration="PT1S")
    await gw.process(granted["id"])
    for _ in range(100):
        states = {(await gw.get(f"{REQ}/{r['id']}"))["state"] for r in (expiring, granted)}
        if states == {"EXPIRED", "REVOKED"}:
            break
        await asyncio.sleep(0.05)
    await settle(gw)
    [_, (to, message)] = mails(mail_sink, expiring["id"])
    assert to == [EMAILS["requester"]] and subject(message).startswith("[Gateway] Expired")
    # Mails to different people travel in separate lanes: order holds per recipient only.
    by_person: dict[str, list[str]] = {}
    for to, m in mails(mail_sink, granted["id"]):
        by_person.setdefault(to[0], []).append(subject(m).split(":")[0])
    assert by_person == {EMAILS["approver"]: ["[Gateway] Access requested"],
                         EMAILS["requester"]: ["[Gateway] Approved", "[Gateway] Access ended"]}


async def test_one_thread_per_request(start_gateway, receiver, mail_sink) -> None:
    gw = await start_gateway(**notified(receiver, mail_sink))
    first = await gw.create(PROFILE)  # mailhook to tickets@ + notifications
    await gw.process(first["id"], user="owner")
    second = await gw.create(PROFILE, action="write-data")
    await settle(gw)
    thread = mails(mail_sink, first["id"])
    # submitted: mailhook + approver + owner; approved: mailhook + requester
    assert len(thread) == 5
    # Lanes to different people run in parallel, so arrival order varies: the root is the
    # request's first mail, the mailhook to the ticketing tool, and only it has no reply-to.
    roots = [(to, m) for to, m in thread if m["In-Reply-To"] is None]
    assert len(roots) == 1 and roots[0][0] == ["tickets@acme.com"]
    assert roots[0][1].get_content_type() == "text/plain"  # the XML mailhook
    root = roots[0][1]["Message-ID"]
    for _, message in thread:
        if message is not roots[0][1]:
            assert message["In-Reply-To"] == root and message["References"] == root
    assert len({m["Message-ID"] for _, m in thread}) == 5
    other = mails(mail_sink, second["id"])
    [other_root] = [m["Message-ID"] for _, m in other if m["In-Reply-To"] is None]
    assert other_root != root
    assert all(m["In-Reply-To"] in (None, other_root) for _, m in other)
    recipients = sorted(to[0] for to, _ in thread)
    assert recipients == sorted(["tickets@acme.com", "tickets@acme.com", EMAILS["approver"],
                                 EMAILS["owner"], EMAILS["requester"]])


async def test_expiring_notice_is_sent_once_across_restarts(start_gateway, receiver,
                                                           mail_sink) -> None:
    sections = notified(receiver, mail_sink)
    gw = await start_gateway(**copy.deepcopy(sections))
    # The notice falls due a second after the approval (API durations are whole seconds).
    created = await gw.create(ORDERS, duration="PT1H1S")
    await gw.process(created["id"])
    for _ in range(200):
        if len(mails(mail_sink, created["id"])) == 3:
            break
        await asyncio.sleep(0.05)
    await settle(gw)
    notice = mails(mail_sink, created["id"])[-1]
    assert notice[0] == [EMAILS["requester"]]
    assert subject(notice[1]).startswith("[Gateway] Access ends in one hour")
    await gw.client.close()
    again = await start_gateway(**copy.deepcopy(sections))
    await asyncio.sleep(0.5)
    await settle(again)
    assert len(mails(mail_sink, created["id"])) == 3
    # Access of an hour or less gets no notice: the approval already said when it ends.
    short = await again.create(ORDERS, action="write-data", duration="PT30M")
    await again.process(short["id"])
    await asyncio.sleep(0.5)
    await settle(again)
    assert len(mails(mail_sink, short["id"])) == 2


async def test_hostile_free_text_is_escaped_and_inert(start_gateway, receiver,
                                                      mail_sink) -> None:
    gw = await start_gateway(**notified(receiver, mail_sink))
    reason = ("<script>alert(1)</script> <img src=http://evil.example/x.png> ]]> "
              "\r\nBcc: victim@evil.example\r\n\u202eRTL override\u202c")
    created = await gw.create(ORDERS, reason=reason)
    await gw.process(created["id"], remarks="<b>ok</b>\r\nX-Evil: 1")
    await settle(gw)
    for to, message in mails(mail_sink, created["id"]):
        assert message["Bcc"] is None and message["X-Evil"] is None
        assert "evil" not in " ".join(to)
        body = parts(message)
        html = body["text/html"]
        assert "<script>" not in html and "&lt;script&gt;" in html
        assert "<img" not in html and "&lt;img" in html
        assert "<bdi>" in html  # free text is isolated from the surrounding direction
        assert "<b>ok</b>" not in html
        assert "alert(1)" in body["text/plain"]


async def test_no_notifications_without_the_policy_flag(start_gateway, receiver,
                                                        mail_sink) -> None:
    gw = await start_gateway(**hooked_sections(receiver, mail_sink))
    created = await gw.create(PROFILE, useCase=CHURN, extraInformation={"values": ["Group A"]})
    await gw.process(created["id"])
    await settle(gw)
    channels = [d["channel"] for d in
                (await gw.get(f"{REQ}/{created['id']}/deliveries"))["items"]]
    assert channels == ["email", "email"]  # the mailhooks only


@pytest.mark.parametrize(("path", "yield_s", "bound"), [
    ("/slow", 2.0, (0.45, 1.5)),  # the webhook answers after 0.5 s: the mail follows it
    ("/hang", 0.3, (0.25, 1.5)),  # the webhook hangs for 30 s: the mail goes after 0.3 s
])
async def test_notifications_give_way_to_hooks_for_a_bounded_time(
        start_gateway, receiver, mail_sink, monkeypatch, path, yield_s, bound) -> None:
    """A notification waits while a hook is being delivered, at most NOTIFICATION_YIELD_S."""
    monkeypatch.setattr("gateway.delivery.dispatcher.NOTIFICATION_YIELD_S", yield_s)
    receiver.slow_s = 0.5
    sections = notified(receiver, mail_sink, timeout_s=5.0)
    sections["policies"][0]["hook"] = {"type": "webhook", "url": receiver.url(path),
                                       "secret": HOOK_SECRET, "statuses": ["pending"]}
    gw = await start_gateway(**sections)
    started = time.monotonic()
    await gw.create(ORDERS)
    await mail_sink.wait_for(1, timeout=5)
    waited = time.monotonic() - started
    assert len(receiver.calls) == 1
    assert bound[0] <= waited < bound[1], waited


async def test_notifications_wait_while_hooks_keep_coming(start_gateway, receiver, mail_sink,
                                                          monkeypatch) -> None:
    """In a burst, every webhook is attempted before the first notification; once the hooks
    have been quiet for QUIET_S, the notifications go."""
    monkeypatch.setattr("gateway.delivery.dispatcher.QUIET_S", 1.0)  # longer than the burst's gaps
    sections = notified(receiver, mail_sink)
    sections["policies"][0]["hook"] = {"type": "webhook", "url": receiver.url("/ok"),
                                       "secret": HOOK_SECRET, "statuses": ["pending"]}
    gw = await start_gateway(**sections)
    for i in range(8):
        await gw.create(ORDERS, action=f"read-{i}")
    await receiver.wait_for(8)
    await mail_sink.wait_for(8, timeout=10)  # one "submitted" mail per request
    await settle(gw)
    records = (await gw.get("/v1/deliveries?limit=100", user="admin"))["items"]
    webhooks = [d for d in records if d["channel"] == "webhook"]
    notifications = [d for d in records if d["channel"] == "notification"]
    assert len(webhooks) == 8 and len(notifications) == 8
    assert all(d["state"] == "delivered" for d in records)
    last_webhook = max(d["finishedAt"] for d in webhooks)
    first_notification = min(d["attemptedAt"] for d in notifications)
    assert first_notification > last_webhook
    # ...and not before the hooks were quiet for QUIET_S (times are fixed-width UTC text).
    gap = parse_time(first_notification) - parse_time(last_webhook)
    assert gap.total_seconds() >= 0.9, gap


async def test_a_notification_tells_the_request_as_it_was_at_its_transition(
        start_gateway, receiver, mail_sink, monkeypatch) -> None:
    """Notifications are rendered when sent, from what the transition recorded: a change
    made while a notification waits does not leak into it."""
    monkeypatch.setattr("gateway.delivery.dispatcher.NOTIFICATION_YIELD_S", 1.0)
    sections = notified(receiver, mail_sink, timeout_s=1.0)
    sections["policies"][0]["hook"] = {"type": "webhook", "url": receiver.url("/hang"),
                                       "secret": HOOK_SECRET, "statuses": ["pending"]}
    gw = await start_gateway(**sections)
    created = await gw.create(ORDERS, reason="The first reason.")
    status, _ = await gw.call("PUT", f"{REQ}/{created['id']}",
                              json={"requestReason": "The second reason."})
    assert status == 200
    await mail_sink.wait_for(1, timeout=5)
    [(_, message)] = mails(mail_sink, created["id"])
    for text in parts(message).values():
        assert "The first reason." in text and "The second reason." not in text


async def test_a_notification_rendered_by_an_earlier_version_is_sent_as_it_is(
        start_gateway, receiver, mail_sink, store) -> None:
    """Records queued before an upgrade hold the rendered mail: it is sent unchanged."""
    gw = await start_gateway(**notified(receiver, mail_sink))
    created = await gw.create(ORDERS)
    await mail_sink.wait_for(1)
    await settle(gw)
    rendered = {"subject": "[Access] Legacy", "text": "Legacy text.\n",
                "html": "<p>Legacy HTML.</p>\n"}
    conn = open_store(store)
    conn.execute(
        "INSERT INTO deliveries (id, request_id, event, channel, destination, policy_code, "
        "state, created_at, payload, payload_sha256, meta) SELECT 'legacy', request_id, "
        "event, channel, destination, policy_code, 'queued', created_at, ?, 'x', meta "
        "FROM deliveries WHERE channel = 'notification'", (json.dumps(rendered),))
    conn.close()
    await gw.create(ORDERS, action="write-data")  # a commit that wakes the dispatcher
    await mail_sink.wait_for(3)
    await settle(gw)
    legacy = [m for _, m in mails(mail_sink, created["id"]) if "legacy" in m["Message-ID"]]
    assert len(legacy) == 1
    assert parts(legacy[0]) == {"text/plain": "Legacy text.\r\n",
                                "text/html": "<p>Legacy HTML.</p>\r\n"}


async def test_notifications_queued_while_hooks_are_busy_wait_no_longer_than_the_bound(
        start_gateway, receiver, mail_sink, monkeypatch) -> None:
    """A notification queued while hooks are busy is not even fetched; it still goes once
    the hooks have been busy for NOTIFICATION_YIELD_S, not when they are done."""
    monkeypatch.setattr("gateway.delivery.dispatcher.NOTIFICATION_YIELD_S", 0.5)
    sections = notified(receiver, mail_sink, timeout_s=5.0)
    sections["policies"][0]["hook"] = {"type": "webhook", "url": receiver.url("/hang"),
                                       "secret": HOOK_SECRET, "statuses": ["pending"]}
    gw = await start_gateway(**sections)
    started = time.monotonic()
    await gw.create(ORDERS)  # its webhook hangs for 5 s: the hooks stay busy
    await receiver.wait_for(1)
    await gw.create(ORDERS, action="write-data")  # queued while the gate is closed
    await mail_sink.wait_for(2, timeout=5)
    waited = time.monotonic() - started
    assert waited < 2.0, waited  # the bound (0.5 s), not the webhooks' 5 s timeout
    assert len(receiver.calls) == 2


async def test_notifications_leave_mail_connections_to_mailhooks(start_gateway, receiver,
                                                                 mail_sink) -> None:
    """Notifications hold at most half of the mail connections (2 of 4): a mailhook queued
    behind a row of them finds a connection at once."""
    mail_sink.delay_s = 0.25
    gw = await start_gateway(**notified(receiver, mail_sink))
    for i in range(8):
        await gw.create(ORDERS, action=f"read-{i}")  # each mails its approver
    hooked = await gw.create(PROFILE)  # its mailhook goes to tickets@, and it mails people
    await mail_sink.wait_for(8 + 2, timeout=15)
    assert mail_sink.most_at_once["people"] == 2
    order = [m["X-Access-Request-Key"] for _, m in mail_sink.messages]
    hook = next(i for i, (env, _) in enumerate(mail_sink.messages)
                if "tickets@acme.com" in env.rcpt_tos)
    assert order[hook] == hooked["id"]
    assert hook < 6, order  # not after the row of notifications queued before it
