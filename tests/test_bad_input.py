"""Bad bodies and bad calls: always the error shape of SPEC §9, never a 500."""

from __future__ import annotations

import pytest

from tests.conftest import EMAILS, ORDERS, TOKENS, Gateway

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
