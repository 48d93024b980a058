"""The web inbox at the HTTP level (no browser): sign-in and cookies, CSRF, security headers,
the trusted header, escaping, permissions and paging. The browser tests are in
tests/test_ui_browser.py."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import pytest

from gateway.config import parse_config
from gateway.errors import ConfigError
from tests.conftest import EMAILS, ORDERS, TOKENS, Gateway

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def cookie_value(header: str, name: str) -> str:
    match = re.search(rf"{name}=([^;]*)", header)
    assert match, header
    return match.group(1)


class Browser:
    """Cookies by hand: aiohttp's jar keeps none for 127.0.0.1, and we want to see them."""

    def __init__(self, gw: Gateway) -> None:
        self.client = gw.client
        self.cookies: dict[str, str] = {}
        self.csrf = ""

    def _headers(self, extra: dict[str, str] | None) -> dict[str, str]:
        headers = dict(extra or {})
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        return headers

    def _keep(self, response: Any) -> None:
        for header in response.headers.getall("Set-Cookie", []):
            name, _, rest = header.partition("=")
            value = rest.split(";")[0]
            if "Max-Age=0" in header or value == '""':
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value

    async def get(self, path: str, headers: dict[str, str] | None = None
                  ) -> tuple[int, str, Any]:
        async with self.client.get(path, headers=self._headers(headers),
                                   allow_redirects=False) as response:
            text = await response.text()
            self._keep(response)
            found = CSRF.search(text)
            if found:
                self.csrf = found.group(1)
            return response.status, text, response

    async def post(self, path: str, data: dict[str, Any], *, csrf: bool = True,
                   headers: dict[str, str] | None = None) -> tuple[int, str, Any]:
        body = {"csrf": self.csrf, **data} if csrf else data
        async with self.client.post(path, data=body, headers=self._headers(headers),
                                    allow_redirects=False) as response:
            text = await response.text()
            self._keep(response)
            return response.status, text, response

    async def sign_in(self, who: str) -> Any:
        await self.get("/ui/sign-in")
        status, text, response = await self.post("/ui/sign-in", {"token": TOKENS[who],
                                                                 "next": "/ui/inbox"})
        assert status == 303, text
        return response


async def signed_in(gw: Gateway, who: str) -> Browser:
    browser = Browser(gw)
    await browser.sign_in(who)
    await browser.get("/ui/inbox")  # the session's CSRF token
    return browser


def test_config_keys_of_the_inbox_are_checked() -> None:
    config = parse_config({"ui": {"session_ttl": "PT1H", "trusted_header": "X-Forwarded-Email",
                                  "trusted_proxies": ["10.0.0.1", "192.168.0.0/16"]},
                           "server": {"allow_insecure_cookies": True}})
    assert config.ui.session_ttl.total_seconds() == 3600
    assert config.server.allow_insecure_cookies is True
    assert parse_config({}).ui.trusted_header is None
    for bad, key in (
        ({"ui": {"colour": "blue"}}, "ui.colour"),
        ({"ui": {"session_ttl": "8 hours"}}, "ui.session_ttl"),
        ({"ui": {"session_ttl": "P90D"}}, "ui.session_ttl"),
        ({"ui": {"trusted_header": "X Email", "trusted_proxies": ["10.0.0.1"]}},
         "ui.trusted_header"),
        ({"ui": {"trusted_proxies": ["10.0.0.300"]}}, "ui.trusted_proxies"),
        ({"ui": {"trusted_proxies": "10.0.0.1"}}, "ui.trusted_proxies"),
        ({"ui": {"trusted_header": "X-Forwarded-Email"}}, "ui.trusted_proxies"),
        ({"server": {"allow_insecure_cookies": "yes"}}, "server.allow_insecure_cookies"),
    ):
        with pytest.raises(ConfigError) as caught:
            parse_config(bad)
        assert str(caught.value).startswith(key + ":"), caught.value


async def test_pages_send_security_headers_and_no_page_without_sign_in(gw: Gateway) -> None:
    browser = Browser(gw)
    status, _, response = await browser.get("/ui/inbox")
    assert status == 303 and response.headers["Location"].startswith("/ui/sign-in?next=")
    status, text, response = await browser.get("/ui/sign-in")
    assert status == 200 and "<button type=\"submit\" class=\"primary\">Sign in</button>" in text
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"
    status, _, response = await browser.get("/ui/static/ui.css")
    assert status == 200 and response.headers["X-Frame-Options"] == "DENY"
    # The API's bearer tokens are not how pages are reached, nor the other way round.
    status, _, _ = await browser.get("/ui/inbox",
                                     headers={"Authorization": f"Bearer {TOKENS['admin']}"})
    assert status == 303
    status, _ = await gw.call("GET", "/v1/resource-access-requests", user=None)
    assert status == 401


async def test_session_cookie_flags_and_store_keeps_only_a_hash(gw: Gateway, peek: Any) -> None:
    browser = Browser(gw)
    response = await browser.sign_in("requester")
    header = next(h for h in response.headers.getall("Set-Cookie")
                  if h.startswith("gw_session="))
    flags = [part.strip().lower() for part in header.split(";")]
    assert "httponly" in flags and "samesite=strict" in flags and "secure" in flags
    assert "max-age=28800" in flags and "path=/ui" in flags
    session_id = browser.cookies["gw_session"]
    conn = peek()
    rows = conn.execute("SELECT id_sha256, email FROM ui_sessions").fetchall()
    assert [tuple(r) for r in rows] == [(hashlib.sha256(session_id.encode()).hexdigest(),
                                         EMAILS["requester"])]
    status, text, _ = await browser.get("/ui/inbox")
    assert status == 200 and EMAILS["requester"] in text
    # Sign-out ends the session in the store: the old cookie no longer signs anyone in.
    status, _, _ = await browser.post("/ui/sign-out", {})
    assert status == 303 and "gw_session" not in browser.cookies
    assert conn.execute("SELECT count(*) FROM ui_sessions").fetchone()[0] == 0
    browser.cookies["gw_session"] = session_id
    status, _, _ = await browser.get("/ui/inbox")
    assert status == 303


async def test_insecure_cookies_only_when_configured(start_gateway: Any) -> None:
    gw = await start_gateway(server={"allow_insecure_cookies": True},
                             ui={"session_ttl": "PT10M"})
    response = await Browser(gw).sign_in("requester")
    header = next(h for h in response.headers.getall("Set-Cookie")
                  if h.startswith("gw_session="))
    assert "secure" not in header.lower() and "Max-Age=600" in header


async def test_a_wrong_token_does_not_sign_in(gw: Gateway) -> None:
    browser = Browser(gw)
    await browser.get("/ui/sign-in")
    status, text, _ = await browser.post("/ui/sign-in", {"token": "not-a-token-of-anyone"})
    assert status == 401 and "unknown or revoked" in text and "gw_session" not in browser.cookies


async def test_forms_without_the_csrf_token_are_refused(gw: Gateway) -> None:
    created = await gw.create(ORDERS)
    approver = await signed_in(gw, "approver")
    path = f"/ui/requests/{created['id']}/process"
    status, text, _ = await approver.post(path, {"decision": "approve"}, csrf=False)
    assert status == 403 and "did not come from this site" in text
    status, text, _ = await approver.post(path, {"decision": "approve", "csrf": "forged"},
                                          csrf=False)
    assert status == 403
    # The token of another session (the requester's) is worth nothing with this cookie.
    requester = await signed_in(gw, "requester")
    status, _, _ = await approver.post(path, {"decision": "approve", "csrf": requester.csrf},
                                       csrf=False)
    assert status == 403
    # Nor is a sign-in form posted without its token.
    stranger = Browser(gw)
    await stranger.get("/ui/sign-in")
    status, _, _ = await stranger.post("/ui/sign-in", {"token": TOKENS["admin"]}, csrf=False)
    assert status == 403 and "gw_session" not in stranger.cookies
    assert (await gw.get(f"/v1/resource-access-requests/{created['id']}"))["state"] == "PENDING"
    status, _, _ = await approver.post(path, {"decision": "approve"})
    assert status == 303
    assert (await gw.get(f"/v1/resource-access-requests/{created['id']}"))["state"] == "APPROVED"


async def test_a_page_can_do_nothing_the_users_token_could_not(gw: Gateway) -> None:
    created = await gw.create(ORDERS)
    path = f"/ui/requests/{created['id']}"
    other = await signed_in(gw, "other")  # neither requester nor recipient
    status, text, _ = await other.get(path)
    assert status == 403 and "you may not see this request" in text.lower()
    status, text, _ = await other.post(f"{path}/process", {"decision": "approve"})
    assert status == 403 and "recipients and admins" in text
    status, text, _ = await other.post(f"{path}/cancel", {})
    assert status == 403 and "only the requester" in text.lower()
    requester = await signed_in(gw, "requester")
    status, text, _ = await requester.post(f"{path}/process", {"decision": "approve"})
    assert status == 403 and "may not approve or reject their own" in text
    status, text, _ = await requester.get("/ui/deliveries")
    assert status == 403 and "Admins only" in text
    status, _, _ = await requester.post("/ui/policies/free-policy", {"entry": "{}"})
    assert status == 403
    assert (await gw.get(f"/v1/resource-access-requests/{created['id']}"))["state"] == "PENDING"
    # A stale page: approving what another recipient has handled says so, as the API does
    # (in words: the API's "a REJECTED request cannot become APPROVED").
    await gw.process(created["id"], "reject", remarks="no")
    approver = await signed_in(gw, "approver")
    status, text, _ = await approver.post(f"{path}/process", {"decision": "approve"})
    assert status == 409 and "This request is rejected now: it can no longer be approved." in text


async def test_user_text_is_shown_as_text(gw: Gateway) -> None:
    hostile = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    created = await gw.create(ORDERS, reason=hostile, audience="<b>all</b>")
    for who, path in (("requester", f"/ui/requests/{created['id']}"),
                      ("approver", "/ui/inbox"), ("requester", "/ui/requests")):
        browser = await signed_in(gw, who)
        status, text, _ = await browser.get(path)
        assert status == 200
        assert "<script>alert" not in text and "<img src=x" not in text and "<b>all" not in text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in text or path == "/ui/requests"


async def test_trusted_header_only_from_trusted_proxies(start_gateway: Any) -> None:
    header = {"X-Forwarded-Email": EMAILS["approver"].upper()}
    trusted = await start_gateway(ui={"trusted_header": "X-Forwarded-Email",
                                      "trusted_proxies": ["127.0.0.0/8"]})
    browser = Browser(trusted)
    status, text, _ = await browser.get("/ui/inbox", headers=header)
    assert status == 200 and EMAILS["approver"] in text and "Sign out" not in text
    created = await trusted.create(ORDERS)
    await browser.get("/ui/inbox", headers=header)  # its form's CSRF token
    status, text, _ = await browser.post(f"/ui/requests/{created['id']}/process",
                                         {"decision": "approve"}, headers=header)
    assert status == 303, re.findall("<strong>(.*?)</strong>", text)
    status, text, _ = await browser.get("/ui/inbox",
                                        headers={"X-Forwarded-Email": "nobody@acme.com"})
    assert status == 401 and "is not a user of this gateway" in text
    elsewhere = await start_gateway(ui={"trusted_header": "X-Forwarded-Email",
                                        "trusted_proxies": ["10.0.0.0/8", "::1"]})
    status, _, response = await Browser(elsewhere).get("/ui/inbox", headers=header)
    assert status == 303 and response.headers["Location"].startswith("/ui/sign-in")


async def test_lists_are_paged(gw: Gateway) -> None:
    for i in range(23):
        await gw.create(ORDERS, action=f"read-{i:02d}")
    approver = await signed_in(gw, "approver")
    status, text, _ = await approver.get("/ui/inbox")
    assert status == 200 and text.count('class="card request"') == 20
    assert "read-22" in text and "read-02" not in text
    following = re.search(r'href="(/ui/inbox\?cursor=[^"]+)" rel="next"', text)
    assert following
    status, text, _ = await approver.get(following.group(1).replace("&amp;", "&"))
    assert text.count('class="card request"') == 3 and "read-02" in text
    assert 'rel="next"' not in text
    requester = await signed_in(gw, "requester")
    status, text, _ = await requester.get("/ui/requests")
    assert text.count("<tr>") == 21 and 'rel="next"' in text  # a header row and 20


async def test_empty_states_say_what_to_do(gw: Gateway) -> None:
    browser = await signed_in(gw, "other")
    _, text, _ = await browser.get("/ui/inbox")
    assert "Nothing waits for you" in text and 'href="/ui/request-access"' in text
    _, text, _ = await browser.get("/ui/requests")
    assert "You have not asked for anything yet" in text
    admin = await signed_in(gw, "admin")
    _, text, _ = await admin.get("/ui/deliveries")
    assert "No deliveries yet" in text


def test_without_chromium_the_browser_tests_skip_in_one_line_or_fail_in_ci(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from tests.support import browser

    monkeypatch.setattr(browser, "CANDIDATES", ())
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.delenv("GATEWAY_REQUIRE_BROWSER", raising=False)
    with pytest.raises(pytest.skip.Exception) as skipped:
        browser.chromium_path()
    assert str(skipped.value).startswith("Chromium not installed (")
    assert "\n" not in str(skipped.value)
    monkeypatch.setenv("GATEWAY_REQUIRE_BROWSER", "1")
    with pytest.raises(pytest.fail.Exception):
        browser.chromium_path()
