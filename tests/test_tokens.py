"""Personal access tokens (SPEC §14) on the test's backend: created once and shown once,
listed without the token, revoked at once on every instance, refused when expired (the
tokens' injectable clock moves, nothing sleeps), revoked with their person, written to the
store as digests only, and never in a log line or a later answer."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
from datetime import timedelta
from typing import Any

import pytest

from gateway.api.keys import DIRECTORY, TOKENS
from gateway.directory import Person
from gateway.timeutil import parse_time, utcnow
from tests.conftest import EMAILS, Gateway
from tests.conftest import TOKENS as CONFIG_TOKENS
from tests.test_openapi import checked

PAT = re.compile(r"^gwpat_[A-Za-z0-9_-]{43}$")
BOT = "ci-bot@acme.com"


async def call_with(gw: Gateway, token: str, method: str, path: str,
                    json: Any = None) -> tuple[int, Any]:
    return await gw.call(method, path, user=None, json=json,
                         headers={"Authorization": f"Bearer {token}"})


async def new_token(gw: Gateway, user: str = "requester", **body: Any) -> dict[str, Any]:
    status, created = await gw.call("POST", "/v1/tokens", user=user,
                                    json={"name": "laptop", **body})
    assert status == 201, created
    return created


async def bot_with_token(gw: Gateway) -> tuple[Person, str]:
    """A person of source `api` (no configuration token) and a token of theirs."""
    bot = await gw.app[DIRECTORY].create(Person(email=BOT, source="api"),
                                         actor=EMAILS["admin"])
    _, secret = await gw.app[TOKENS].create(bot, "pipeline", timedelta(days=1))
    return bot, secret


async def test_create_use_list_revoke(gw: Gateway) -> None:
    doc = await gw.get("/openapi.json")
    status, created = await checked(gw, doc, "POST", "/v1/tokens",
                                    json={"name": "CI pipeline", "expiresIn": "P30D"})
    assert status == 201
    assert PAT.match(created["token"])
    assert created["name"] == "CI pipeline" and created["email"] == EMAILS["requester"]
    assert created["lastUsedAt"] is None
    lifetime = parse_time(created["expiresAt"]) - parse_time(created["createdAt"])
    assert lifetime == timedelta(days=30)

    status, body = await call_with(gw, created["token"], "GET", "/v1/resource-access-requests")
    assert status == 200, body
    made = await call_with(gw, created["token"], "POST",
                           f"/v1/user/{EMAILS['requester']}/request-access",
                           json={"resource": "sales/orders", "reason": "with a token"})
    assert made[0] == 201 and made[1]["requestedBy"] == EMAILS["requester"]
    await gw.app[TOKENS].settle()

    status, listed = await checked(gw, doc, "GET", "/v1/tokens")
    assert status == 200
    assert [t["id"] for t in listed["items"]] == [created["id"]]
    assert listed["items"][0]["lastUsedAt"] is not None
    assert created["token"] not in str(listed)

    status, revoked = await checked(gw, doc, "DELETE", f"/v1/tokens/{created['id']}")
    assert status == 200 and revoked["revokedAt"]
    assert created["token"] not in str(revoked)
    status, body = await call_with(gw, created["token"], "GET", "/v1/resource-access-requests")
    assert status == 401 and body["error"]["code"] == "unauthorized"
    assert (await checked(gw, doc, "DELETE", f"/v1/tokens/{created['id']}"))[0] == 404
    assert (await gw.get("/v1/tokens"))["items"] == []


async def test_expiry_default_maximum_and_bad_bodies(gw: Gateway) -> None:
    doc = await gw.get("/openapi.json")
    created = await new_token(gw)
    lifetime = parse_time(created["expiresAt"]) - parse_time(created["createdAt"])
    assert lifetime == timedelta(days=90)
    longest = await new_token(gw, expiresIn="P366D")
    assert parse_time(longest["expiresAt"]) - parse_time(longest["createdAt"]) == \
        timedelta(days=366)
    status, answer = await checked(gw, doc, "POST", "/v1/tokens",
                                   json={"name": "x", "expiresIn": "P52W3D"})
    assert status == 409 and answer["error"]["code"] == "expiry-too-long"
    assert answer["error"]["details"]["field"] == "expiresIn"
    defaulted = await new_token(gw, expiresIn=None)
    assert parse_time(defaulted["expiresAt"]) - parse_time(defaulted["createdAt"]) == \
        timedelta(days=90)
    for body, field in (({"name": "x", "expiresIn": "P1Y"}, "expiresIn"),
                        ({"name": "x", "expiresIn": "PT0S"}, "expiresIn"),
                        ({"name": "x", "expiresIn": 90}, "expiresIn"),
                        ({"name": "   "}, "name"), ({}, "name"), ({"name": "a\nb"}, "name"),
                        ({"name": "x" * 101}, "name"),
                        ({"name": "x", "token": "gwpat_mine"}, "token")):
        status, answer = await checked(gw, doc, "POST", "/v1/tokens", json=body)
        assert status == 400, (body, answer)
        assert answer["error"]["details"]["field"] == field
    status, _ = await checked(gw, doc, "POST", "/v1/tokens", data=b"x",
                              headers={"Content-Type": "text/plain"})
    assert status == 415
    assert (await checked(gw, doc, "GET", "/v1/tokens?bogus=1"))[0] == 400


async def test_an_expired_token_is_refused(gw: Gateway) -> None:
    created = await new_token(gw, expiresIn="PT1H")
    tokens = gw.app[TOKENS]
    expires = parse_time(created["expiresAt"])
    tokens.clock = lambda: expires - timedelta(seconds=1)
    assert (await call_with(gw, created["token"], "GET", "/v1/tokens"))[0] == 200
    tokens.clock = lambda: expires
    status, body = await call_with(gw, created["token"], "GET", "/v1/tokens")
    assert status == 401 and "expired" in body["error"]["message"]
    # Still listed (so that its owner sees it ended) until revoked.
    assert [t["id"] for t in (await gw.get("/v1/tokens"))["items"]] == [created["id"]]


async def test_last_use_is_written_at_most_once_a_minute(gw: Gateway, peek: Any) -> None:
    created = await new_token(gw)
    tokens = gw.app[TOKENS]
    start = utcnow()
    tokens.clock = lambda: start
    conn = peek()

    def last_used() -> Any:
        return conn.execute("SELECT last_used_at FROM api_tokens WHERE id = ?",
                            (created["id"],)).fetchone()[0]

    for _ in range(5):
        assert (await call_with(gw, created["token"], "GET", "/v1/tokens"))[0] == 200
    await tokens.settle()
    first = last_used()
    assert parse_time(first) == start
    tokens.clock = lambda: start + timedelta(seconds=59)
    for _ in range(3):
        assert (await call_with(gw, created["token"], "GET", "/v1/tokens"))[0] == 200
    await tokens.settle()
    assert last_used() == first
    tokens.clock = lambda: start + timedelta(seconds=61)
    assert (await call_with(gw, created["token"], "GET", "/v1/tokens"))[0] == 200
    await tokens.settle()
    assert parse_time(last_used()) == start + timedelta(seconds=61)


async def test_a_token_cannot_create_tokens_but_lists_and_revokes_itself(gw: Gateway) -> None:
    created = await new_token(gw)
    status, body = await call_with(gw, created["token"], "POST", "/v1/tokens",
                                   json={"name": "child"})
    assert status == 403 and body["error"]["code"] == "token-cannot-create-tokens"
    status, listed = await call_with(gw, created["token"], "GET", "/v1/tokens")
    assert status == 200 and len(listed["items"]) == 1
    status, _ = await call_with(gw, created["token"], "DELETE", f"/v1/tokens/{created['id']}")
    assert status == 200
    assert (await call_with(gw, created["token"], "GET", "/v1/tokens"))[0] == 401


async def test_whose_tokens_each_caller_sees_and_revokes(gw: Gateway) -> None:
    mine = await new_token(gw, "requester")
    theirs = await new_token(gw, "other", name="other's")
    listed = await gw.get("/v1/tokens", user="requester")
    assert [t["id"] for t in listed["items"]] == [mine["id"]]
    status, _ = await gw.call("GET", f"/v1/tokens?email={EMAILS['other']}")
    assert status == 403
    own = await gw.get(f"/v1/tokens?email={EMAILS['requester'].upper()}")
    assert [t["id"] for t in own["items"]] == [mine["id"]]
    everyone = await gw.get("/v1/tokens", user="admin")
    assert {t["id"] for t in everyone["items"]} == {mine["id"], theirs["id"]}
    one = await gw.get(f"/v1/tokens?email={EMAILS['other']}", user="admin")
    assert [t["id"] for t in one["items"]] == [theirs["id"]]
    paged = await gw.get("/v1/tokens?limit=1", user="admin")
    assert len(paged["items"]) == 1 and paged["nextCursor"]
    rest = await gw.get(f"/v1/tokens?limit=1&cursor={paged['nextCursor']}", user="admin")
    assert [t["id"] for t in paged["items"] + rest["items"]] == [mine["id"], theirs["id"]]
    assert rest["nextCursor"] is None

    status, body = await gw.call("DELETE", f"/v1/tokens/{theirs['id']}", user="requester")
    assert status == 404 and body["error"]["code"] == "token-not-found"
    assert (await call_with(gw, theirs["token"], "GET", "/v1/tokens"))[0] == 200
    status, _ = await gw.call("DELETE", f"/v1/tokens/{theirs['id']}", user="admin")
    assert status == 200
    assert (await call_with(gw, theirs["token"], "GET", "/v1/tokens"))[0] == 401
    events = await gw.get("/v1/audit-events?subject=user:olive@acme.com", user="admin")
    kinds = [(e["type"], e["actor"]) for e in events["items"] if e["type"].startswith("token")]
    assert kinds == [("token.created", EMAILS["other"]), ("token.revoked", EMAILS["admin"])]
    for token in (mine["token"], theirs["token"]):
        assert token not in str(events)


async def test_at_most_fifty_working_tokens(gw: Gateway) -> None:
    tokens = gw.app[TOKENS]
    me = await gw.app[DIRECTORY].person(EMAILS["requester"])
    assert me is not None
    for i in range(49):
        await tokens.create(me, f"t{i}", timedelta(days=1))
    last = await new_token(gw)
    status, body = await gw.call("POST", "/v1/tokens", json={"name": "one too many"})
    assert status == 409 and body["error"]["code"] == "too-many-tokens"
    await gw.call("DELETE", f"/v1/tokens/{last['id']}")
    await new_token(gw)


async def test_deprovisioning_revokes_a_persons_tokens(gw: Gateway) -> None:
    directory = gw.app[DIRECTORY]
    bot, secret = await bot_with_token(gw)
    assert (await call_with(gw, secret, "GET", "/v1/resource-access-requests"))[0] == 200
    await directory.save(dataclasses.replace(bot, active=False), actor=EMAILS["admin"])
    status, body = await call_with(gw, secret, "GET", "/v1/resource-access-requests")
    assert status == 401, body
    # Revoked, not merely refused while inactive: coming back does not revive it.
    await directory.save(dataclasses.replace(bot, active=True), actor=EMAILS["admin"])
    assert (await call_with(gw, secret, "GET", "/v1/resource-access-requests"))[0] == 401
    assert (await gw.get(f"/v1/tokens?email={BOT}", user="admin"))["items"] == []

    _, again = await gw.app[TOKENS].create(bot, "second", timedelta(days=1))
    assert (await call_with(gw, again, "GET", "/v1/tokens"))[0] == 200
    await directory.delete(BOT, actor=EMAILS["admin"], by="api")
    assert (await call_with(gw, again, "GET", "/v1/tokens"))[0] == 401
    await directory.create(Person(email=BOT, source="api"), actor=EMAILS["admin"])
    assert (await call_with(gw, again, "GET", "/v1/tokens"))[0] == 401


async def test_the_users_api_deprovisions_a_persons_tokens(gw: Gateway) -> None:
    _, secret = await bot_with_token(gw)
    assert (await call_with(gw, secret, "GET", "/v1/me"))[0] == 200
    status, body = await gw.call("DELETE", f"/v1/users/{BOT}", user="admin")
    assert status in (200, 204), body
    assert (await call_with(gw, secret, "GET", "/v1/me"))[0] == 401


async def test_an_inactive_persons_token_is_refused_at_once(gw: Gateway, peek: Any) -> None:
    """Deactivated behind the gateway's back (another instance, without the revocation that
    deprovisioning adds): the person's state alone refuses the token."""
    _, secret = await bot_with_token(gw)
    assert (await call_with(gw, secret, "GET", "/v1/tokens"))[0] == 200
    conn = peek()
    conn.execute("UPDATE people SET active = 0 WHERE email = ?", (BOT,))
    conn.execute("UPDATE gateway_directory_version SET version = version + 1")
    status, body = await call_with(gw, secret, "GET", "/v1/tokens")
    assert status == 401 and "not active" in body["error"]["message"]


async def test_a_revocation_on_one_instance_holds_on_another(start_gateway: Any) -> None:
    first = await start_gateway()
    second = await start_gateway()
    created = await new_token(first)
    for gw in (first, second):  # both have the look-up cached now
        assert (await call_with(gw, created["token"], "GET", "/v1/tokens"))[0] == 200
        assert (await call_with(gw, created["token"], "GET", "/v1/tokens"))[0] == 200
    assert (await first.call("DELETE", f"/v1/tokens/{created['id']}"))[0] == 200
    assert (await call_with(second, created["token"], "GET", "/v1/tokens"))[0] == 401
    await first.app[TOKENS].settle()
    await second.app[TOKENS].settle()


async def test_only_digests_are_stored(gw: Gateway, peek: Any) -> None:
    created = await new_token(gw)
    conn = peek()
    rows = conn.execute("SELECT * FROM api_tokens").fetchall()
    assert len(rows) == 1
    values = [str(v) for v in tuple(rows[0])]
    assert hashlib.sha256(created["token"].encode()).hexdigest() in values
    assert not any(created["token"] in v for v in values)
    assert not any(created["token"][6:] in v for v in values)


async def test_a_token_is_never_logged(gw: Gateway, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    created = await new_token(gw)
    secret = created["token"]
    for method, path in (("GET", "/v1/tokens"), ("GET", "/v1/nowhere"),
                         ("POST", "/v1/tokens"), ("DELETE", f"/v1/tokens/{created['id']}"),
                         ("GET", "/v1/tokens")):
        await call_with(gw, secret, method, path, json={"name": "x"} if method == "POST"
                        else None)
    await call_with(gw, secret + "x", "GET", "/v1/tokens")
    await gw.app[TOKENS].settle()
    assert caplog.records  # the access log and the store did log
    assert secret not in caplog.text and secret[6:] not in caplog.text
    for token in CONFIG_TOKENS.values():
        assert token not in caplog.text


async def test_a_token_does_not_open_a_web_inbox_session(gw: Gateway) -> None:
    from tests.test_ui import Browser

    created = await new_token(gw)
    browser = Browser(gw)
    await browser.get("/ui/sign-in")
    status, text, _ = await browser.post("/ui/sign-in", {"token": created["token"],
                                                        "next": "/ui/inbox"})
    assert status == 401 and "personal access token" in text
    assert "gw_session" not in browser.cookies


async def test_the_tokens_page_creates_shows_once_and_revokes(gw: Gateway) -> None:
    from tests.test_ui import signed_in

    browser = await signed_in(gw, "requester")
    status, text, _ = await browser.get("/ui/tokens")
    assert status == 200 and "No tokens" in text and 'href="/ui/tokens"' in text
    status, text, response = await browser.post("/ui/tokens", {"name": "<laptop>",
                                                               "expires_in": "P30D"})
    assert status == 201, text
    assert response.headers["Cache-Control"] == "no-store"
    shown = PAT.search(re.search(r'id="new-token"[^>]*value="([^"]+)"', text).group(1))  # type: ignore[union-attr]
    assert shown is not None and "not shown again" in text
    assert "&lt;laptop&gt;" in text and "<laptop>" not in text
    secret = shown.group(0)
    assert (await call_with(gw, secret, "GET", "/v1/tokens"))[0] == 200
    status, text, _ = await browser.get("/ui/tokens")
    assert secret not in text and "&lt;laptop&gt;" in text
    token_id = (await gw.get("/v1/tokens"))["items"][0]["id"]
    status, _, _ = await browser.post(f"/ui/tokens/{token_id}/revoke", {}, csrf=False)
    assert status == 403  # no CSRF token: refused
    assert (await call_with(gw, secret, "GET", "/v1/tokens"))[0] == 200
    status, _, response = await browser.post(f"/ui/tokens/{token_id}/revoke", {})
    assert status == 303 and response.headers["Location"] == "/ui/tokens?done=revoked"
    assert (await call_with(gw, secret, "GET", "/v1/tokens"))[0] == 401
    status, text, _ = await browser.post("/ui/tokens", {"name": "  "})
    assert status == 400 and "name" in text
    other = await new_token(gw, "other")
    status, text, _ = await browser.post(f"/ui/tokens/{other['id']}/revoke", {})
    assert status == 404
    assert (await call_with(gw, other["token"], "GET", "/v1/tokens"))[0] == 200


async def test_a_configuration_token_that_looks_like_one_still_works(
        start_gateway: Any) -> None:
    from tests.conftest import raw_config

    legacy = "gwpat_" + "a" * 43
    users = [*raw_config({"path": "x"})["users"],
             {"email": "legacy@acme.com", "token": legacy}]
    gw = await start_gateway(users=users)
    status, me = await call_with(gw, legacy, "GET", "/v1/me")
    assert status == 200 and me["email"] == "legacy@acme.com"
    status, _ = await call_with(gw, legacy, "POST", "/v1/tokens", json={"name": "ok"})
    assert status == 201  # a configuration token may create tokens, whatever it looks like
