"""Mail profiles (SPEC §5 `hook.emailProfile`) through a real SMTP server (aiosmtpd), each
message read the way its ticketing tool reads it."""

from __future__ import annotations

import asyncio
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from tests.conftest import CHURN, EMAILS, PROFILE, Gateway, hooked_sections
from tests.peers import MailSink

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = etree.XMLSchema(etree.parse(str(ROOT / "schemas" / "mailhook.xsd")))
# SPEC §5, in its order: what a ServiceNow inbound email action reads as email.body.<name>.
SERVICENOW_NAMES = ["requester", "approver", "accessRequestKey", "policyCode", "status",
                    "timestamp", "itemKey", "itemName", "itemUrl", "purpose", "audience",
                    "useCase", "extraInformation"]
# A reason that tries to forge lines of its own (LF, CRLF, CR, NEL, U+2028, U+2029).
FORGING = ("Churn study\nstatus:Approved\r\napprover:mallory@evil.com\rpolicyCode:x"
           "\x85itemKey:y\u2028audience:z\u2029useCase:w")


async def _mailhooks(gw: Gateway, sink: MailSink, profile: str, **fields: Any
                     ) -> tuple[dict[str, Any], list[Message]]:
    created = await gw.create(PROFILE, useCase=CHURN, extraInformation={"values": ["Group A",
                                                                                   "Group B"]},
                              **fields)
    await gw.process(created["id"], user="owner", remarks="fine")
    await sink.wait_for(2)
    for _ in range(200):
        records = (await gw.get(f"/v1/resource-access-requests/{created['id']}/deliveries"))
        if all(r["state"] == "delivered" for r in records["items"]):
            break
        await asyncio.sleep(0.025)
    assert [r["state"] for r in records["items"]] == ["delivered", "delivered"], records
    return created, [m for _, m in sink.messages]


async def _start(start_gateway: Any, receiver: Any, sink: MailSink, profile: str | None
                 ) -> Gateway:
    sections = hooked_sections(receiver, sink)
    if profile is not None:
        sections["policies"][1]["hook"]["emailProfile"] = profile
    gw = await start_gateway(**sections)
    policy = await gw.get("/v1/policies/uc-policy")
    assert policy["hook"]["emailProfile"] == (profile or "standard")
    return gw


def _valid_xml(raw: bytes) -> etree._Element:
    assert raw.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    root = etree.fromstring(raw, etree.XMLParser(resolve_entities=False, no_network=True))
    SCHEMA.assertValid(root)
    return root


@pytest.mark.parametrize("profile", [None, "standard"])
async def test_standard_is_the_message_of_spec_5(start_gateway, receiver, mail_sink,
                                                 profile) -> None:
    gw = await _start(start_gateway, receiver, mail_sink, profile)
    created, messages = await _mailhooks(gw, mail_sink, "standard", reason="Churn study")
    for message, status in zip(messages, ("Pending", "Approved"), strict=True):
        assert message["Auto-Submitted"] == "auto-generated"
        assert message["X-Auto-Response-Suppress"] is None
        assert message.get_content_type() == "text/plain"
        root = _valid_xml(message.get_payload(decode=True))
        assert root.findtext("status") == status
        assert root.findtext("accessRequestKey") == created["id"]


async def test_jira_has_no_automatic_mail_headers(start_gateway, receiver, mail_sink) -> None:
    gw = await _start(start_gateway, receiver, mail_sink, "jira")
    created, messages = await _mailhooks(gw, mail_sink, "jira", reason="Churn study")
    for message in messages:
        assert "Auto-Submitted" not in message and "Precedence" not in message
        assert message["X-Auto-Response-Suppress"] == "All"
        assert message["X-Access-Request-Key"] == created["id"]
        assert message.get_content_type() == "text/plain"
        root = _valid_xml(message.get_payload(decode=True))
        assert root.findtext("purpose") == "Churn study"
    for record in (await gw.get("/v1/deliveries?channel=email", user="admin"))["items"]:
        detail = await gw.get(f"/v1/deliveries/{record['id']}", user="admin")
        assert detail["request"]["headers"]["X-Auto-Response-Suppress"] == "All"
        assert "Auto-Submitted" not in detail["request"]["headers"]


def servicenow_fields(text: str) -> list[tuple[str, str]]:
    """The body as a ServiceNow inbound action reads it: one `name:value` per line."""
    pairs = []
    for line in text.splitlines():
        name, sep, value = line.partition(":")
        assert sep, f"not a name:value line: {line!r}"
        pairs.append((name, value))
    return pairs


async def test_servicenow_name_value_lines_and_the_xml_attached(start_gateway, receiver,
                                                                mail_sink) -> None:
    gw = await _start(start_gateway, receiver, mail_sink, "servicenow")
    created, messages = await _mailhooks(gw, mail_sink, "servicenow", reason=FORGING,
                                         audience="Team \u00e9 status:Rejected")
    for message, status in zip(messages, ("Pending", "Approved"), strict=True):
        assert message.get_content_type() == "multipart/mixed"
        assert message["Auto-Submitted"] == "auto-generated"
        body, attachment = message.get_payload()
        assert body.get_content_type() == "text/plain"
        assert body.get_content_charset() == "utf-8"
        assert body.get_filename() is None
        pairs = servicenow_fields(body.get_payload(decode=True).decode("utf-8"))
        assert [name for name, _ in pairs] == SERVICENOW_NAMES
        fields = dict(pairs)
        root = _valid_xml(attachment.get_payload(decode=True))
        assert attachment.get_content_type() == "application/xml"
        assert attachment.get_filename() == "data-access-request.xml"
        assert attachment.get_content_disposition() == "attachment"
        assert fields["status"] == status == root.findtext("status")
        assert fields["requester"] == EMAILS["requester"]
        assert fields["approver"] == ("" if status == "Pending" else EMAILS["owner"])
        assert fields["accessRequestKey"] == created["id"]
        assert fields["policyCode"] == "uc-policy"
        assert fields["timestamp"] == root.findtext("timestamp")
        assert fields["itemKey"] == PROFILE
        assert fields["itemName"] == "Customer Profile"
        assert fields["itemUrl"] == "https://catalog.example.com/p"
        assert fields["useCase"] == CHURN
        assert fields["extraInformation"] == "Group A, Group B"
        # Every line break of the text became a space: nothing forged a line.
        assert fields["purpose"] == ("Churn study status:Approved approver:mallory@evil.com "
                                     "policyCode:x itemKey:y audience:z useCase:w")
        assert fields["audience"] == "Team \u00e9 status:Rejected"
        # The attachment keeps the text as it was.
        assert root.findtext("purpose") == FORGING.replace("\r\n", "\n").replace("\r", "\n")


async def test_a_profile_is_checked(start_gateway, receiver, mail_sink) -> None:
    gw = await _start(start_gateway, receiver, mail_sink, None)
    policy = await gw.get("/v1/policies/uc-policy")
    for hook, field in (
        ({**policy["hook"], "emailProfile": "zendesk"}, "hook.emailProfile"),
        ({"type": "none", "emailProfile": "jira"}, "hook.emailProfile"),
    ):
        code, answer = await gw.call("PUT", "/v1/policies/uc-policy", user="admin",
                                     json={**policy, "hook": hook})
        assert code == 400 and answer["error"]["details"]["field"] == field, answer
