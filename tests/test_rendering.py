"""Renderers and signing, for any Unicode input: the XML is well-formed and valid, the JSON
is valid against its schema, and the signature verifies (property tests, hypothesis)."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import sys
import time
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from lxml import etree

from gateway.hooks.mailhook import MailhookRenderer, cdata, xml_safe
from gateway.hooks.payload import HookContext
from gateway.hooks.webhook import render_webhook
from gateway.signing import sign, verify

ROOT = Path(__file__).resolve().parent.parent
JSON_SCHEMA = Draft202012Validator(json.loads((ROOT / "schemas" / "webhook.schema.json")
                                              .read_text("utf-8")))
RENDERER = MailhookRenderer()
text = st.text(alphabet=st.characters(codec="utf-8"), max_size=80)  # any scalar value
values = st.lists(text, max_size=3)
props = st.lists(st.fixed_dictionaries({"label": text, "code": text, "values": values}),
                 max_size=3)
resps = st.lists(st.fixed_dictionaries({"label": text, "code": text, "userEmail": text}),
                 max_size=3)
EVENTS = ["pending", "approved", "rejected", "cancelled", "expired", "granted", "error",
          "revoked"]


@st.composite
def contexts(draw: st.DrawFn) -> HookContext:
    use_case = draw(st.none() | st.fixed_dictionaries({
        "key": text, "name": text, "summary": text, "responsibilities": resps,
        "properties": props}))
    extra_field = draw(st.none() | text)
    request = {
        "id": str(draw(st.integers(1, 10**12))), "requestedBy": draw(text),
        "processedBy": draw(st.none() | text), "policyCode": "p-1",
        "reason": draw(st.none() | text), "audience": draw(text), "useCase": None,
        "extraInformation": draw(st.none() | st.fixed_dictionaries(
            {"code": text, "values": values})),
    }
    item = {"key": draw(text), "name": draw(text), "technicalName": draw(text),
            "url": draw(text), "summary": draw(text), "responsibilities": draw(resps),
            "properties": draw(props)}
    return HookContext(request=request, item=item, use_case=use_case, extra_field=extra_field,
                       event=draw(st.sampled_from(EVENTS)),
                       timestamp="2025-11-04T09:51:44.215886Z")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(contexts())
def test_mailhook_is_valid_for_any_text(ctx: HookContext) -> None:
    document = RENDERER.render(ctx)  # validates against the XSD itself; check independently
    root = etree.fromstring(document.encode("utf-8"))
    etree.XMLSchema(etree.parse(str(ROOT / "schemas" / "mailhook.xsd"))).assertValid(root)
    assert (root.findtext("purpose") or "") == as_parsed(ctx.request["reason"] or "")
    assert (root.findtext("requester") or "") == as_parsed(ctx.request["requestedBy"])
    assert (root.find("useCase") is not None) == (ctx.use_case is not None)


@settings(max_examples=150, deadline=None)
@given(contexts(), st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=64))
def test_webhook_is_valid_and_signature_verifies(ctx: HookContext, secret: str) -> None:
    body = render_webhook(ctx)
    document = json.loads(body)
    assert not list(JSON_SCHEMA.iter_errors(document))
    assert document["reasonFreeText"] == ctx.request["reason"]
    stamp = str(int(time.time()))
    signature = sign(secret, stamp, body)
    mac = hmac.new(secret.encode(), stamp.encode() + body, hashlib.sha256).hexdigest()
    assert signature == mac
    assert verify(secret, stamp, body, signature)
    assert not verify(secret, stamp, body + b" ", signature)


def as_parsed(value: str) -> str:
    """What an XML parser reads back: forbidden characters replaced, line ends normalised."""
    return xml_safe(value).replace("\r\n", "\n").replace("\r", "\n")


@given(text)
def test_cdata_round_trips(value: str) -> None:
    root = etree.fromstring(f"<p>{cdata(xml_safe(value))}</p>".encode())
    assert (root.text or "") == as_parsed(value)


def test_forbidden_characters_become_replacement_characters() -> None:
    assert xml_safe("a\x00b\x1fc\ufffed\ud7ff") == "a\ufffdb\ufffdc\ufffdd\ud7ff"


def test_verify_refuses_stale_future_and_malformed() -> None:
    body = b'{"a":1}'
    now = 1_700_000_000
    good = sign("k", now, body)
    assert verify("k", str(now), body, good, now=now)
    assert verify(b"k", str(now).encode(), body.decode(), good.upper(), now=now + 299)
    assert not verify("k", str(now), body, good, now=now + 301)
    assert not verify("k", str(now), body, good, now=now - 301)
    assert not verify("k", "12a", body, good, now=now)
    assert not verify("k", str(now), body, "0" * 64, now=now)
    assert not verify("other", str(now), body, good, now=now)


def test_verify_command() -> None:
    body = b'{"status":"Approved"}'
    stamp = str(int(time.time()))
    env = {"PATH": "/usr/bin:/bin", "HOOK_SECRET": "s\u00e9cret"}

    def run(signature: str, stamp: str = stamp,
            *more: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [sys.executable, "-m", "gateway", "verify", "--secret-env", "HOOK_SECRET",
             "--timestamp", stamp, "--signature", signature, *more],
            input=body, capture_output=True, timeout=60, env=env, cwd=ROOT)

    good = sign("s\u00e9cret", stamp, body)
    result = run(good)
    assert result.returncode == 0 and result.stdout.strip() == b"valid"
    result = run("0" * 64)
    assert result.returncode == 1 and b"does not match" in result.stdout
    old = str(int(time.time()) - 1000)
    result = run(sign("s\u00e9cret", old, body), old)
    # Says what to do about it: the option that accepts an older delivery.
    assert result.returncode == 1 and b"--tolerance" in result.stdout
    assert b"outside the tolerance of 300 s" in result.stdout
    result = run(sign("s\u00e9cret", old, body), old, "--tolerance", "2000")
    assert result.returncode == 0 and result.stdout.strip() == b"valid"
    result = run("0" * 64, old)  # stale and wrong: the mismatch is what matters
    assert result.returncode == 1 and b"does not match" in result.stdout
