"""Bad bodies and bad calls: always the error shape of SPEC §9, never a 500."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
from typing import Any

import pytest

from tests.conftest import EMAILS, ORDERS, TOKENS, Gateway
from tests.test_delivery_recovery import _serve, _wait_exit

CREATE = f"/v1/user/{EMAILS['requester']}/request-access"


def _is_error_shape(body: object) -> bool:
    return (isinstance(body, dict) and set(body) == {"error"}
            and set(body["error"]) == {"code", "message", "details"}
            and isinstance(body["error"]["details"], dict))


@pytest.mark.parametrize("raw", [
    b"{", b"[]", b"null", b"42", b'"text"', b"{'single': 'quotes'}", b"\xff\xfe{}",
    b'{"resource": NaN}', b"[" * 100_000, b'{"a": 1} trailing',
])
async def test_malformed_json_is_400(gw: Gateway, raw: bytes) -> None:
    status, body = await gw.call("POST", CREATE, data=raw,
                                 headers={"Content-Type": "application/json"})
    assert status == 400, body
    assert _is_error_shape(body)


@pytest.mark.parametrize(("body", "field"), [
    ({"resource": 12, "reason": "x"}, "resource"),
    ({"resource": ORDERS, "reason": ["x"]}, "reason"),
    ({"resource": ORDERS, "reason": "x", "shareable": "yes"}, "shareable"),
    ({"resource": ORDERS, "reason": "x", "duration": "forever"}, "duration"),
    ({"resource": ORDERS, "reason": "x", "duration": "P1M"}, "duration"),
    ({"resource": ORDERS, "reason": "x", "duration": "PT0S"}, "duration"),
    ({"resource": ORDERS, "reason": "x", "expiration": "tomorrow"}, "expiration"),
    ({"resource": ORDERS, "reason": "x", "expiration": "2099-01-01T00:00:00"}, "expiration"),
    ({"resource": ORDERS, "reason": "x", "action": "read data\r\nX-Evil: 1"}, "action"),
    ({"resource": ORDERS, "reason": "x", "extraInformation": "Group A"}, "extraInformation"),
    ({"resource": ORDERS, "reason": "x", "colour": "red"}, "colour"),
    ({"reason": "x"}, "resource"),
    ({"resource": ORDERS, "reason": "x" * 10_001}, "reason"),
    ({"resource": "k" * 513, "reason": "x"}, "resource"),
    ({"resource": ORDERS, "reason": "nul \x00 inside"}, "reason"),
    ({"resource": ORDERS + "\n", "reason": "x"}, "resource"),
])
async def test_wrong_fields_are_400_naming_the_field(gw: Gateway, body: dict, field: str) -> None:
    status, answer = await gw.call("POST", CREATE, json=body)
    assert status == 400, answer
    assert _is_error_shape(answer)
    assert answer["error"]["details"]["field"] == field


async def test_lone_surrogate_escape_is_refused(gw: Gateway) -> None:
    raw = b'{"resource": "sales/orders", "reason": "bad \\ud800 half"}'
    status, answer = await gw.call("POST", CREATE, data=raw,
                                   headers={"Content-Type": "application/json"})
    assert status == 400 and answer["error"]["details"]["field"] == "reason"


async def test_unicode_text_round_trips(gw: Gateway) -> None:
    reason = "Analyse \u202eRTL\u202c, emoji \U0001f600, CJK \u4e2d\u6587, ]]> <b>&amp;</b>"
    created = await gw.create(ORDERS, reason=reason)
    got = await gw.get(f"/v1/resource-access-requests/{created['id']}")
    assert got["reason"] == reason


async def test_wrong_content_type_is_415(gw: Gateway) -> None:
    status, answer = await gw.call("POST", CREATE, data=b'{"resource": "sales/orders"}',
                                   headers={"Content-Type": "text/plain"})
    assert status == 415 and _is_error_shape(answer)
    status, answer = await gw.call("POST", CREATE, data=b"resource=x",
                                   headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 415


async def test_oversized_body_is_413(start_gateway) -> None:
    gw = await start_gateway(server={"max_body_bytes": 2048})
    big = {"resource": ORDERS, "reason": "x" * 4000}
    status, answer = await gw.call("POST", CREATE, json=big)
    assert status == 413 and answer["error"]["code"] == "payload-too-large"


async def test_oversized_chunked_body_is_413(start_gateway) -> None:
    gw = await start_gateway(server={"max_body_bytes": 2048})

    async def chunks():
        yield b'{"resource": "sales/orders", "reason": "'
        for _ in range(10):
            yield b"x" * 1000
        yield b'"}'

    status, answer = await gw.call("POST", CREATE, data=chunks(),
                                   headers={"Content-Type": "application/json"})
    assert status == 413 and answer["error"]["code"] == "payload-too-large"


@pytest.mark.parametrize("header", [
    None, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", f"Bearer {TOKENS['admin']}x",
    f"bearer {TOKENS['admin'][:-1]}",
])
async def test_missing_or_bad_token_is_401(gw: Gateway, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}
    status, answer = await gw.call("GET", "/v1/resource-access-requests", user=None,
                                   headers=headers)
    assert status == 401 and answer["error"]["code"] == "unauthorized"


async def test_healthz_needs_no_token(gw: Gateway) -> None:
    status, answer = await gw.call("GET", "/healthz", user=None)
    assert status == 200 and answer["status"] == "ok"


async def test_unknown_route_and_method(gw: Gateway) -> None:
    status, answer = await gw.call("GET", "/v1/nothing-here")
    assert status == 404 and _is_error_shape(answer)
    status, answer = await gw.call("PATCH", "/v1/policies")
    assert status == 405 and _is_error_shape(answer)


async def test_huge_lists_are_refused(gw: Gateway) -> None:
    item = {"key": "many", "name": "Many", "type": "dataset",
            "properties": [{"code": f"p{i}", "values": []} for i in range(201)]}
    status, answer = await gw.call("POST", "/v1/items", user="admin", json=item)
    assert status == 400 and answer["error"]["details"]["field"] == "properties"


# --- what aiohttp's parser refuses before any handler runs ------------------------------

LONG = 9000  # over aiohttp's 8190-byte limits for a request line and for a header


async def _raw(gw: Gateway, *messages: bytes, piece: int = 0) -> list[tuple[int, Any]]:
    """Send bytes on one connection (in pieces of `piece` bytes, if given) and read until
    the gateway closes it: each answer's status and JSON body."""
    reader, writer = await asyncio.open_connection(gw.client.host, gw.client.port)
    try:
        for message in messages:
            step = piece or len(message)
            for at in range(0, len(message), step):
                writer.write(message[at:at + step])
                await writer.drain()
                await asyncio.sleep(0)
        raw = await reader.read()
    finally:
        writer.close()
    answers = []
    while raw:
        head, _, rest = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":")
                                                        for line in lines[1:])}
        length = int(headers["content-length"])
        assert headers["content-type"].startswith("application/json"), headers
        answers.append((int(lines[0].split()[1]), json.loads(rest[:length])))
        raw = rest[length:]
    return answers


def _get(path: bytes = b"/healthz", *headers: bytes) -> bytes:
    return b"GET " + path + b" HTTP/1.1\r\nHost: gateway\r\n" + b"".join(
        h + b"\r\n" for h in headers) + b"\r\n"


@pytest.mark.parametrize(("request_bytes", "status", "code"), [
    (_get(b"/" + b"a" * LONG), 414, "request-line-too-long"),
    (_get(b"/v1/items/" + b"a/" * (LONG // 2)), 414, "request-line-too-long"),
    (_get(b"/healthz?" + b"q=1&" * (LONG // 4)), 414, "request-line-too-long"),
    (_get(b"/healthz", b"X-Big: " + b"b" * LONG), 431, "header-too-large"),
    (_get(b"/healthz", b"X-Original-URL: /" + b"a" * LONG), 431, "header-too-large"),
    (_get(b"/healthz", b"Referer: http://x/" + b"a" * LONG), 431, "header-too-large"),
    (_get(b"/healthz", b"X-Words: GET " + b"word " * (LONG // 5)), 431, "header-too-large"),
    (_get(b"/healthz", b"X-" + b"n" * LONG + b": 1"), 431, "header-too-large"),
    (_get(b"/healthz", *(b"X-H%d: 1" % i for i in range(200))), 431, "too-many-headers"),
    (_get(b"/healthz", b"Bad Header"), 400, "malformed-request"),
    (_get(b"/healthz", b"X-Nul: a\x00b"), 400, "malformed-request"),
    (b"GET /healthz HTTP/9.9\r\n\r\n", 400, "malformed-request"),
    (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64, 400, "malformed-request"),
    (b"POST /healthz HTTP/1.1\r\nHost: g\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
     400, "malformed-request"),
])
async def test_parser_refusals_are_in_the_error_shape(
        gw: Gateway, caplog: pytest.LogCaptureFixture, request_bytes: bytes, status: int,
        code: str) -> None:
    """414 / 431 / 400 in the error shape of SPEC §9, and no ERROR (nor traceback) logged:
    a scanner or a broken client is not the gateway's failure."""
    caplog.set_level(logging.DEBUG)
    [(got, body)] = await _raw(gw, request_bytes)
    assert (got, body["error"]["code"]) == (status, code), body
    assert _is_error_shape(body)
    if status != 400:
        assert body["error"]["details"]["limit"] in (8190, 128)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
    assert [r for r in caplog.records if r.name == "gateway.api" and code in r.getMessage()]


async def test_parser_refusal_after_a_good_request_and_in_pieces(gw: Gateway) -> None:
    """On a kept-alive connection, and with the line arriving in small pieces, the refused
    line is still told apart: the start of a long request line came in an earlier read."""
    answers = await _raw(gw, _get(), _get(b"/" + b"a" * LONG), piece=500)
    assert [(s, b.get("status") or b["error"]["code"]) for s, b in answers] == [
        (200, "ok"), (414, "request-line-too-long")]
    answers = await _raw(gw, _get(), _get(b"/healthz", b"X-Big: /" + b"a" * LONG), piece=700)
    assert [(s, b.get("status") or b["error"]["code"]) for s, b in answers] == [
        (200, "ok"), (431, "header-too-large")]


async def test_a_request_just_under_the_limits_is_served(gw: Gateway) -> None:
    path = b"/healthz?pad=" + b"p" * (8190 - len(b"GET /healthz?pad= HTTP/1.1") - 1)
    [(status, body)] = await _raw(gw, _get(path, b"Connection: close",
                                           b"X-Pad: " + b"p" * 8000))
    assert (status, body["status"]) == (200, "ok")


async def test_gateway_serve_answers_parser_refusals_quietly(tmp_path, store) -> None:
    """The real program (its own runner, not the tests' server): 414 in the error shape, and
    its log has no ERROR and no traceback for it."""
    proc, base = await _serve(tmp_path, store, {})
    host, port = base.removeprefix("http://").split(":")
    try:
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(_get(b"/" + b"a" * LONG))
        raw = await reader.read()
        writer.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        await _wait_exit(proc, 15)
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.split()[1] == b"414"
    assert json.loads(body)["error"]["code"] == "request-line-too-long"
    logs = "".join(p.read_text("utf-8", "replace") for p in tmp_path.glob("gateway-*.log"))
    assert "serving on" in logs and "ERROR" not in logs and "Traceback" not in logs, logs
    assert proc.returncode == 0  # SIGTERM: a clean stop
