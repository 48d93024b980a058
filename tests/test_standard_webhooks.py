"""Standard Webhooks headers and secret rotation (SPEC §4), verified by libraries nobody here
wrote: `standardwebhooks` from PyPI, and the npm package of the same name (tests/node)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import orjson
import pytest
import standardwebhooks
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.api.keys import DISPATCHER
from gateway.signing import SigningKeys, signature_headers, standard_key
from tests.conftest import HOOK_SECRET, ORDERS, hooked_sections
from tests.peers import Received, receiver_verifies

ROOT = Path(__file__).resolve().parent.parent
NODE_DIR = ROOT / "tests" / "node"
WHSEC = "whsec_" + base64.b64encode(bytes(range(7, 39))).decode()
NEW_SECRET = "n\u00eauw-s\u00e9cret-\u2603-" + "x" * 20

texts = st.text(st.characters(exclude_categories=("Cs",)), max_size=300)
secrets = st.one_of(
    st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=100),
    st.binary(min_size=1, max_size=64).map(lambda b: "whsec_" + base64.b64encode(b).decode()),
)


def library_secret(secret: str) -> str:
    """What a Standard Webhooks receiver is given: a `whsec_` secret as it is, any other
    secret as the base64 of its UTF-8 bytes (the libraries always base64-decode)."""
    if secret.startswith("whsec_") and standard_key(secret) != secret.encode("utf-8"):
        return secret
    return base64.b64encode(secret.encode("utf-8")).decode("ascii")


def python_verifies(secret: str, headers: dict[str, str], body: bytes) -> bool:
    try:
        standardwebhooks.Webhook(library_secret(secret)).verify(body, headers,
                                                                json_parse=False)
    except standardwebhooks.webhooks.WebhookVerificationError:
        return False
    return True


def seed_signature(secret: str, stamp: str, body: bytes) -> str:
    """X-HUB-SIGNATURE-256 as SPEC §4 defines it, computed here (no clock involved)."""
    return hmac.new(secret.encode("utf-8"), stamp.encode() + body, hashlib.sha256).hexdigest()


def node_verdicts(cases: list[tuple[str, dict[str, str], bytes]]) -> list[Any]:
    """The npm package's verdicts (True, or its error message), one per case."""
    node = shutil.which("node")
    if node is None or not (NODE_DIR / "node_modules" / "standardwebhooks").is_dir():
        pytest.skip("node or the npm standardwebhooks package is missing (make test installs it)")
    sent = [{"secret": library_secret(s), "headers": h, "body": base64.b64encode(b).decode()}
            for s, h, b in cases]
    done = subprocess.run([node, str(NODE_DIR / "verify-standard.js")], input=json.dumps(sent),
                          capture_output=True, text=True, timeout=60, check=True)
    return json.loads(done.stdout)


@settings(max_examples=200, deadline=None)
@given(secret=secrets, body=texts, delivery_id=st.from_regex(r"[0-9a-f]{32}", fullmatch=True))
def test_any_secret_and_body_verify_with_the_library(secret: str, body: str,
                                                      delivery_id: str) -> None:
    raw = body.encode("utf-8")
    headers = signature_headers(SigningKeys(secret, standard=True), delivery_id=delivery_id,
                                body=raw)
    assert headers["webhook-id"] == delivery_id
    assert headers["webhook-timestamp"] == headers["X-TIMESTAMP"]
    assert python_verifies(secret, headers, raw)
    assert not python_verifies(secret + "x", headers, raw)
    assert not python_verifies(secret, headers, raw + b" ")


@settings(max_examples=100, deadline=None)
@given(new=secrets, old=secrets, body=texts)
def test_rotation_window_with_an_injected_clock(new: str, old: str, body: str) -> None:
    """During the window both secrets verify, after it only the new one; the seed's header
    always carries the new secret."""
    raw = body.encode("utf-8")
    now = 2_000_000_000.0
    keys = SigningKeys(new, previous=old, previous_until=now + 86_400, standard=True)
    during = signature_headers(keys, delivery_id="d1", body=raw, now=now + 86_399)
    after = signature_headers(keys, delivery_id="d1", body=raw, now=now + 86_400)
    for headers in (during, after):
        stamp = headers["X-TIMESTAMP"]
        assert headers["X-HUB-SIGNATURE-256"] == seed_signature(new, stamp, raw)
    assert during["X-HUB-SIGNATURE-256-PREVIOUS"] == seed_signature(
        old, during["X-TIMESTAMP"], raw)
    assert len(during["webhook-signature"].split(" ")) == 2
    assert "X-HUB-SIGNATURE-256-PREVIOUS" not in after
    assert len(after["webhook-signature"].split(" ")) == 1
    assert "webhook-signature" not in signature_headers(SigningKeys(new), delivery_id="d",
                                                        body=raw, now=now)


def _hooks(received: list[Received]) -> list[tuple[dict[str, str], bytes]]:
    return [(r.headers, r.body) for r in received]


async def _deliveries(gw: Any, request_id: str, count: int) -> list[dict[str, Any]]:
    """The request's delivery records, once `count` of them are delivered (bounded wait)."""
    items: list[dict[str, Any]] = []
    for _ in range(400):
        items = (await gw.get(f"/v1/resource-access-requests/{request_id}/deliveries",
                              user="admin"))["items"]
        if len(items) == count and all(i["state"] == "delivered" for i in items):
            return items
        await asyncio.sleep(0.025)
    raise AssertionError(items)


@pytest.mark.parametrize("secret", [HOOK_SECRET, WHSEC], ids=["plain", "whsec"])
async def test_deliveries_verify_with_both_libraries(start_gateway, receiver, mail_sink,
                                                     secret: str) -> None:
    sections = hooked_sections(receiver, mail_sink)
    sections["policies"][0]["hook"].update(secret=secret, standardWebhooks=True)
    gw = await start_gateway(**sections)
    created = await gw.create(ORDERS)
    await gw.process(created["id"])
    records = await _deliveries(gw, created["id"], 2)
    await receiver.wait_for(2)
    calls = _hooks(receiver.on("/ok"))
    assert [h["webhook-id"] for h, _ in calls] == [r["id"] for r in records]
    for headers, body in calls:
        assert headers["webhook-timestamp"] == headers["X-TIMESTAMP"]
        assert receiver_verifies(secret, headers["X-TIMESTAMP"], body,
                                 headers["X-HUB-SIGNATURE-256"])
        assert python_verifies(secret, headers, body)
        assert not python_verifies("other-secret", headers, body)
        assert "X-HUB-SIGNATURE-256-PREVIOUS" not in headers
    verdicts = node_verdicts([(secret, h, b) for h, b in calls]
                             + [("other-secret", h, b) for h, b in calls])
    assert verdicts[:2] == [True, True], verdicts
    assert verdicts[2:] == ["No matching signature found"] * 2, verdicts


async def test_without_the_option_no_standard_headers(start_gateway, receiver,
                                                      mail_sink) -> None:
    gw = await start_gateway(**hooked_sections(receiver, mail_sink))
    await gw.create(ORDERS)
    await receiver.wait_for(1)
    headers = receiver.calls[0].headers
    assert receiver.calls[0].valid
    assert not {"webhook-id", "webhook-signature", "X-HUB-SIGNATURE-256-PREVIOUS"} \
        & set(headers)


async def test_rotation_both_secrets_verify_until_the_window_ends(
        start_gateway, receiver, mail_sink, peek) -> None:
    sections = hooked_sections(receiver, mail_sink)
    sections["policies"][0]["hook"]["standardWebhooks"] = True
    gw = await start_gateway(**sections)
    policy = await gw.get("/v1/policies/free-policy")
    assert policy["hook"]["previousSecretExpiresAt"] is None
    hook = {**policy["hook"], "secret": NEW_SECRET, "previousSecretValidFor": "P1D"}
    code, answer = await gw.call("PUT", "/v1/policies/free-policy", user="admin",
                                 json={**policy, "hook": hook})
    assert code == 200, answer
    until = answer["hook"]["previousSecretExpiresAt"]
    assert until is not None and answer["hook"]["secretSet"] is True
    text = orjson.dumps(answer).decode()
    assert NEW_SECRET not in text and HOOK_SECRET not in text
    # A PUT that keeps the secret (a read policy sent back) keeps the window.
    code, kept = await gw.call("PUT", "/v1/policies/free-policy", user="admin", json=answer)
    assert code == 200 and kept["hook"]["previousSecretExpiresAt"] == until, kept

    created = await gw.create(ORDERS)
    await _deliveries(gw, created["id"], 1)
    [(during, body)] = _hooks(receiver.on("/ok"))
    stamp = during["X-TIMESTAMP"]
    assert receiver_verifies(NEW_SECRET, stamp, body, during["X-HUB-SIGNATURE-256"])
    assert receiver_verifies(HOOK_SECRET, stamp, body, during["X-HUB-SIGNATURE-256-PREVIOUS"])
    assert len(during["webhook-signature"].split(" ")) == 2
    assert python_verifies(NEW_SECRET, during, body)
    assert python_verifies(HOOK_SECRET, during, body)

    # The window's end, moved into the past in the store: the next delivery is signed with
    # the new secret only.
    conn = peek()
    row = conn.execute("SELECT hook FROM policies WHERE code = ?", ("free-policy",)).fetchone()
    stored = json.loads(row[0])
    assert stored["previousSecret"] == HOOK_SECRET
    stored["previousSecretExpiresAt"] = "2020-01-01T00:00:00.000000Z"
    conn.execute("UPDATE policies SET hook = ? WHERE code = ?",
                 (json.dumps(stored), "free-policy"))
    gw.app[DISPATCHER].forget_secrets()  # what the API does after a policy change
    await gw.process(created["id"])
    await _deliveries(gw, created["id"], 2)
    (after, body2) = _hooks(receiver.on("/ok"))[1]
    assert receiver_verifies(NEW_SECRET, after["X-TIMESTAMP"], body2,
                             after["X-HUB-SIGNATURE-256"])
    assert "X-HUB-SIGNATURE-256-PREVIOUS" not in after
    assert len(after["webhook-signature"].split(" ")) == 1
    assert python_verifies(NEW_SECRET, after, body2)
    assert not python_verifies(HOOK_SECRET, after, body2)

    verdicts = node_verdicts([(NEW_SECRET, during, body), (HOOK_SECRET, during, body),
                              (NEW_SECRET, after, body2), (HOOK_SECRET, after, body2)])
    assert verdicts == [True, True, True, "No matching signature found"], verdicts

    # Neither secret appears in any answer about the policy, its audit or its deliveries.
    for path in ("/v1/policies/free-policy", "/v1/audit-events?limit=500",
                 f"/v1/deliveries?requestId={created['id']}"):
        shown = orjson.dumps(await gw.get(path, user="admin")).decode()
        assert NEW_SECRET not in shown and HOOK_SECRET not in shown, path


async def test_a_new_secret_without_a_window_switches_at_once(start_gateway, receiver,
                                                              mail_sink) -> None:
    gw = await start_gateway(**hooked_sections(receiver, mail_sink))
    policy = await gw.get("/v1/policies/free-policy")
    for body, expected in (
        ({**policy["hook"], "secret": NEW_SECRET, "previousSecretValidFor": "PT1H"}, True),
        ({**policy["hook"], "secret": "third-secret"}, False),  # a new secret ends it
    ):
        code, answer = await gw.call("PUT", "/v1/policies/free-policy", user="admin",
                                     json={**policy, "hook": body})
        assert code == 200, answer
        assert (answer["hook"]["previousSecretExpiresAt"] is not None) is expected
    code, answer = await gw.call("PUT", "/v1/policies/free-policy", user="admin", json={
        **policy, "hook": {**policy["hook"], "secret": "x", "previousSecretValidFor": "P1M"}})
    assert code == 400 and answer["error"]["details"]["field"] == "hook.previousSecretValidFor"
