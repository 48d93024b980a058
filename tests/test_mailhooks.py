"""Mailhook deliveries through a real SMTP server (aiosmtpd) on loopback."""

from __future__ import annotations

import asyncio
import ssl
from email.header import decode_header, make_header
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from tests.conftest import CHURN, EMAILS, PROFILE, Gateway, hooked_sections
from tests.peers import MailSink, self_signed, start_smtp

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = etree.XMLSchema(etree.parse(str(ROOT / "schemas" / "mailhook.xsd")))
REQ = "/v1/resource-access-requests"


async def _finished(gw: Gateway, request_id: str, count: int) -> list[dict]:
    for _ in range(200):
        found = (await gw.get(f"{REQ}/{request_id}/deliveries"))["items"]
        if len(found) >= count and all(d["state"] not in ("queued", "sending") for d in found):
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"deliveries did not finish: {found}")


def _text(root: etree._Element, path: str) -> str:
    return root.findtext(path) or ""


async def test_mailhook_arrives_valid_and_equal_to_the_request(start_gateway, receiver,
                                                               mail_sink: MailSink) -> None:
    gw = await start_gateway(**hooked_sections(receiver, mail_sink))
    created = await gw.create(PROFILE, reason="Churn ]]> study <b>bold</b> & more",
                              audience="Team \u00e9", useCase=CHURN,
                              extraInformation={"values": ["Group B"]})
    approved = await gw.process(created["id"], user="owner", remarks="fine")
    await mail_sink.wait_for(2)
    envelope, message = mail_sink.messages[1]
    assert envelope.rcpt_tos == ["tickets@acme.com"]
    assert message["From"] == "gateway@acme.com"
    assert str(make_header(decode_header(message["Subject"]))) == \
        "[Gateway] Data Access Request on Item Customer Profile"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["X-Access-Request-Key"] == created["id"]
    assert message["X-Access-Request-Status"] == "Approved"
    assert message["Message-ID"] and message["Date"]
    assert message.get_content_type() == "text/plain"
    assert message.get_content_charset() == "utf-8"
    body = message.get_payload(decode=True)
    assert body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    root = etree.fromstring(body)
    SCHEMA.assertValid(root)
    assert _text(root, "requester") == EMAILS["requester"]
    assert _text(root, "approver") == EMAILS["owner"] == approved["processedBy"]
    assert _text(root, "accessRequestKey") == created["id"]
    assert _text(root, "policyCode") == "uc-policy"
    assert _text(root, "status") == "Approved"
    assert _text(root, "subject/key") == PROFILE
    assert _text(root, "subject/technicalName") == "customer-profile"
    assert _text(root, "subject/url") == "https://catalog.example.com/p"
    assert [r.findtext("userEmail") for r in root.find("subject/responsibilities")] == [
        EMAILS["approver"], EMAILS["owner"], EMAILS["other"]]
    assert _text(root, "audience") == "Team \u00e9"
    assert _text(root, "purpose") == "Churn ]]> study <b>bold</b> & more"
    assert _text(root, "useCase/key") == CHURN
    assert _text(root, "useCase/responsibilities/responsibility/name") == "Curator"
    assert [v.text for v in root.find("extraInformation/values")] == ["Group B"]
    assert _text(root, "extraInformation/name") == "Contributors"
    first = etree.fromstring(mail_sink.messages[0][1].get_payload(decode=True))
    assert _text(first, "status") == "Pending" and _text(first, "approver") == ""
    records = await _finished(gw, created["id"], 2)
    assert [r["state"] for r in records] == ["delivered", "delivered"]
    assert records[1]["smtpCode"] == 250 and records[1]["channel"] == "email"
    assert records[1]["destination"] == "tickets@acme.com"
    assert message["Message-ID"] == f"<{records[1]['id']}@acme.com>"


async def test_header_injection_is_inert(start_gateway, receiver, mail_sink) -> None:
    sections = hooked_sections(receiver, mail_sink)
    gw = await start_gateway(**sections)
    item = {"key": "evil", "name": "Evil \u00fcml\u00e4ut name", "type": "dataset",
            "policyCode": "uc-policy",
            "responsibilities": [{"label": "Curator", "code": "curator",
                                  "userEmail": EMAILS["approver"]}]}
    code, answer = await gw.call("POST", "/v1/items", user="admin", json=item)
    assert code == 201, answer
    code, answer = await gw.call("POST", "/v1/items", user="admin",
                                 json={**item, "key": "evil2", "name": "X\r\nBcc: a@b.c"})
    assert code == 400  # CR/LF never reaches a stored single-line field
    await gw.create("evil", useCase=CHURN, extraInformation={"values": ["Group A"]},
                    reason="line1\r\nBcc: victim@acme.com\r\n\r\nbody")
    await mail_sink.wait_for(1)
    envelope, message = mail_sink.messages[0]
    assert envelope.rcpt_tos == ["tickets@acme.com"]
    assert message["Bcc"] is None
    assert str(make_header(decode_header(message["Subject"]))).endswith(
        "Evil \u00fcml\u00e4ut name")


async def test_refused_recipient_and_server_down(start_gateway, receiver, mail_sink) -> None:
    mail_sink.refuse.add("tickets@acme.com")
    gw = await start_gateway(**hooked_sections(receiver, mail_sink))
    created = await gw.create(PROFILE)
    [record] = await _finished(gw, created["id"], 1)
    assert record["state"] == "failed" and record["error"]["kind"] == "smtp-rejected"
    assert record["smtpCode"] == 550
    await gw.client.close()
    sections = hooked_sections(receiver, mail_sink)
    sections["mail"]["port"] = 9  # nothing listens there
    gw = await start_gateway(**sections)
    other = await gw.create(PROFILE, action="write-data")
    [record] = await _finished(gw, other["id"], 1)
    assert record["state"] == "failed" and record["error"]["kind"] == "smtp-connect"


def _starttls_sink(tmp_path: Path) -> tuple[MailSink, Any, Path]:
    """An SMTP server that requires STARTTLS, with a certificate made for the test."""
    cert, key = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    sink = MailSink()
    return sink, start_smtp(sink, tls_context=context, require_starttls=True), cert


async def test_starttls_with_a_self_signed_certificate(start_gateway, receiver, tmp_path,
                                                       monkeypatch) -> None:
    sink, controller, cert = _starttls_sink(tmp_path)
    try:
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the gateway trusts the test's CA
        sink.port = controller.port  # type: ignore[attr-defined]
        sections = hooked_sections(receiver, sink)
        sections["mail"]["security"] = "starttls"
        gw = await start_gateway(**sections)
        created = await gw.create(PROFILE)
        await sink.wait_for(1)
        [record] = await _finished(gw, created["id"], 1)
        assert record["state"] == "delivered"
        assert sink.messages[0][1]["X-Access-Request-Status"] == "Pending"
    finally:
        controller.stop()


async def test_untrusted_certificate_is_a_failure(start_gateway, receiver, tmp_path) -> None:
    sink, controller, _ = _starttls_sink(tmp_path)
    try:
        sink.port = controller.port  # type: ignore[attr-defined]
        sections = hooked_sections(receiver, sink)
        sections["mail"]["security"] = "starttls"
        gw = await start_gateway(**sections)
        created = await gw.create(PROFILE)
        [record] = await _finished(gw, created["id"], 1)
        assert record["state"] == "failed"
        assert record["error"]["kind"] == "smtp-connect"
        assert sink.messages == []
    finally:
        controller.stop()


@pytest.mark.parametrize("count", [12])
async def test_many_mails_reuse_connections(start_gateway, receiver, mail_sink,
                                            count: int) -> None:
    gw = await start_gateway(**hooked_sections(receiver, mail_sink))
    for i in range(count):
        await gw.create(PROFILE, action=f"act-{i}")
    await mail_sink.wait_for(count)
    records = (await gw.get("/v1/deliveries?channel=email&limit=100", user="admin"))["items"]
    assert len(records) == count
    connections = len(set(mail_sink.peers))
    assert connections <= 4 < count, f"{connections} SMTP connections for {count} mails"
