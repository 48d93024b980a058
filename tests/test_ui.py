"""The web inbox at the HTTP level (no browser): sign-in and cookies, CSRF, security headers,
the trusted header, escaping, permissions and paging. The browser tests are in
tests/test_ui_browser.py."""

from __future__ import annotations

import hashlib
import re
from typing import Any
from urllib.parse import quote

import pytest

from gateway.config import parse_config
from gateway.errors import ConfigError
from gateway.timeutil import parse_time
from tests.conftest import CHURN, EMAILS, ORDERS, PROFILE, TOKENS, Gateway

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


# --- words for people: names, labels, refusals, durations, times ----------------------------

def html_of(text: str) -> Any:
    from lxml import html

    return html.fromstring(text)


def texts(tree: Any, xpath: str) -> list[str]:
    return [" ".join(e.text_content().split()) for e in tree.xpath(xpath)]


async def test_pages_show_names_and_labels_not_keys_and_codes(gw: Gateway) -> None:
    profile = await gw.create(PROFILE)
    await gw.create(ORDERS)
    approver = await signed_in(gw, "approver")
    _, text, _ = await approver.get("/ui/inbox")
    card = html_of(text).xpath(f'//*[@id="request-{profile["id"]}"]')[0]
    assert texts(card, ".//h2/a") == ["Customer Profile"]
    assert texts(card, './/*[contains(@class, "key")]') == [PROFILE]  # secondary text
    facts = dict(zip(texts(card, ".//dt"), texts(card, ".//dd"), strict=True))
    assert facts["Use case"] == "Churn Risk Analysis" and facts["Contributors"] == "Group A"
    assert "contributors" not in facts and card.xpath(f'.//span[@title="{CHURN}"]')
    assert sorted(texts(html_of(text), '//ol[@class="cards"]//h2/a')) == [
        "Customer Profile", "Orders"]

    requester = await signed_in(gw, "requester")
    _, text, _ = await requester.get("/ui/requests")
    assert sorted(texts(html_of(text), "//tbody//td[1]/a")) == ["Customer Profile", "Orders"]
    _, text, _ = await requester.get(f"/ui/requests/{profile['id']}")
    tree = html_of(text)
    assert texts(tree, "//h1") == ["Customer Profile"]
    assert f"{PROFILE}" in texts(tree, '//p[contains(@class, "key")]')
    facts = dict(zip(texts(tree, "//dt"), texts(tree, "//dd"), strict=True))
    assert facts["Use case"] == "Churn Risk Analysis" and facts["Contributors"] == "Group A"
    assert facts["Policy"] == "Use case"  # the policy's name; its code uc-policy as a title
    _, text, _ = await requester.get("/ui/request-access")
    assert "dataset · policy Free text" in texts(html_of(text), "//li//p")
    _, text, _ = await requester.get("/ui/request-access?item=" + PROFILE)
    assert texts(html_of(text), "//h1") == ["Request access to Customer Profile"]

    admin = await signed_in(gw, "admin")
    _, text, _ = await admin.get("/ui/items")
    tree = html_of(text)
    assert "Orders" in texts(tree, "//tbody//td[1]/a")
    row = tree.xpath('//tbody/tr[td[1]/a[text()="Orders"]]')[0]
    assert texts(row, "td")[1:] == ["dataset", "Free text"]
    assert texts(row, "td[1]/span") == [ORDERS]
    _, text, _ = await admin.get("/ui/policies")
    assert sorted(texts(html_of(text), "//tbody//td[1]/a")) == ["Free text", "Use case"]
    _, text, _ = await admin.get("/ui/items/" + ORDERS.replace("/", "%2F"))
    assert texts(html_of(text), "//h1") == ["Orders"]


async def test_a_use_case_gone_from_the_catalog_still_shows_its_key(gw: Gateway) -> None:
    created = await gw.create(PROFILE)
    await gw.process(created["id"], "reject")
    status, _ = await gw.call("DELETE", "/v1/use-cases/" + quote(CHURN, safe=""), user="admin")
    assert status == 204
    requester = await signed_in(gw, "requester")
    _, text, _ = await requester.get(f"/ui/requests/{created['id']}")
    facts = dict(zip(texts(html_of(text), "//dt"), texts(html_of(text), "//dd"), strict=True))
    assert facts["Use case"] == CHURN and facts["contributors"] == "Group A"


def alert_of(text: str) -> str:
    found = texts(html_of(text), '//*[@role="alert"]')
    assert len(found) == 1, text
    return found[0]


async def test_form_refusals_name_the_field_in_words(gw: Gateway) -> None:
    requester = await signed_in(gw, "requester")
    await requester.get("/ui/request-access?item=" + ORDERS)

    async def send(**fields: Any) -> tuple[int, str]:
        status, text, _ = await requester.post("/ui/request-access", {"item": ORDERS,
                                                                      **fields})
        return status, text

    status, text = await send(reason="  ")
    assert status == 409 and alert_of(text) == "Reason: say why you need this access"
    assert html_of(text).xpath('//textarea[@id="reason"][@aria-invalid="true"]')
    assert html_of(text).xpath('//*[@role="alert"]//a[@href="#reason"]')
    status, text = await send(reason="x" * 10_001)
    assert status == 400
    assert alert_of(text) == "Reason: too long: at most 10,000 characters"
    status, text = await send(reason="ok", duration="custom", custom_duration="2 fortnights")
    assert status == 400 and alert_of(text).startswith("Duration: “fortnights” is not a unit")
    assert html_of(text).xpath('//input[@id="request-custom"][@aria-invalid="true"]')
    assert html_of(text).xpath('//input[@id="request-custom"][@value="2 fortnights"]')
    status, text = await send(reason="ok", duration="custom", custom_duration="")
    assert status == 400
    assert alert_of(text) == "Duration: type a custom duration such as 2 hours or 3 days"
    status, text = await send(reason="ok", duration="custom", custom_duration="3 months")
    assert "months and years have no fixed length" in alert_of(text)
    status, text = await send(reason="ok", duration="PT2X")  # a radio value made up
    assert status == 400 and alert_of(text).startswith("Duration: write a duration such as 2 h")

    await requester.get("/ui/request-access?item=" + PROFILE)
    status, text, _ = await requester.post("/ui/request-access", {"item": PROFILE})
    assert status == 409 and alert_of(text) == "Reason: choose a use case"
    status, text, _ = await requester.post("/ui/request-access",
                                           {"item": PROFILE, "useCase": CHURN})
    assert status == 409 and alert_of(text) == "Contributors: choose at least one"
    assert html_of(text).xpath('//fieldset[@id="extra-values"][@aria-invalid="true"]')
    status, text, _ = await requester.post("/ui/request-access", {
        "item": PROFILE, "useCase": CHURN, "extra": "Group Z"})
    assert alert_of(text) == "Contributors: choose among the values listed for this use case"
    for shown in ("useCase", "extraInformation", "policy uc-policy", "body."):
        assert shown not in alert_of(text)

    await requester.post("/ui/request-access", {"item": ORDERS, "reason": "first"})
    status, text = await send(reason="second")
    assert status == 409 and alert_of(text).startswith(
        "You already have a pending request for this item")

    # The API's answers are its own: field paths and codes, unchanged.
    status, body = await gw.call("POST", f"/v1/user/{EMAILS['requester']}/request-access",
                                 json={"resource": PROFILE})
    assert status == 409 and body["error"]["details"]["field"] == "useCase"
    assert body["error"]["message"] == "useCase: required: policy uc-policy asks for a use case"
    status, body = await gw.call("POST", f"/v1/user/{EMAILS['requester']}/request-access",
                                 json={"resource": ORDERS, "reason": "r",
                                       "duration": "2 hours"})
    assert status == 400 and body["error"]["message"].startswith(
        "duration: expected an ISO 8601 duration")


def test_explain_takes_any_field_path_to_its_label() -> None:
    from gateway.errors import Conflict, InvalidField
    from gateway.ui.form_errors import explain

    said = explain(InvalidField("body.reason.useCase", "required"))
    assert (said.label, said.message) == ("Reason", "choose a use case")
    said = explain(InvalidField("extraInformation.values[3]", "at most 256 characters"),
                   {"extraInformation": ("Contributors", "extra-values")})
    assert (said.label, said.message, said.control) == (
        "Contributors", "too long: at most 256 characters", "extra-values")
    said = explain(InvalidField("remarks", "contains a control character"))
    assert said.label == "Comment" and "control character" in said.message
    said = explain(Conflict("a GRANTED request cannot be changed", code="invalid-transition",
                            state="GRANTED"))
    assert said.label is None
    assert said.message == "This request is granted now: it can no longer be changed."
    said = explain(InvalidField("somethingNew", "expected a colour"))  # said as the API says
    assert (said.label, said.message) == ("somethingNew", "expected a colour")


async def test_custom_durations_as_people_type_them(gw: Gateway) -> None:
    requester = await signed_in(gw, "requester")
    await requester.get("/ui/request-access?item=" + ORDERS)
    status, text, response = await requester.post("/ui/request-access", {
        "item": ORDERS, "reason": "Quarter close.", "duration": "custom",
        "custom_duration": "2 hours"})
    assert status == 303, alert_of(text)
    request_id = response.headers["Location"].split("/")[-1].split("?")[0]
    activity = await gw.get(f"/v1/resource-access-requests/{request_id}/activity")
    assert activity["items"][0]["changes"] == {"duration": "PT2H"}
    _, text, _ = await requester.get(f"/ui/requests/{request_id}")
    assert "for 2 hours" in texts(html_of(text), '//p[@class="who-line"]')[0]
    assert html_of(text).xpath('//input[@placeholder="2 hours"]') == []  # not the approver

    approver = await signed_in(gw, "approver")
    await approver.get(f"/ui/requests/{request_id}")
    custom = html_of((await approver.get(f"/ui/requests/{request_id}"))[1]).xpath(
        '//label[@for="approve-custom"]')
    assert texts(custom[0], ".") == ["Custom duration, such as 90 minutes, 2 hours or 3 days"]
    status, text, _ = await approver.post(f"/ui/requests/{request_id}/process", {
        "decision": "approve", "duration": "custom", "custom_duration": "90 minutes"})
    assert status == 303, alert_of(text)
    approved = await gw.get(f"/v1/resource-access-requests/{request_id}")
    granted = parse_time(approved["accessExpiresAt"]) - parse_time(approved["processedAt"])
    assert granted.total_seconds() == 90 * 60
    _, text, _ = await requester.get(f"/ui/requests/{request_id}")
    assert "Duration: asked 2 hours, approved 1 hour 30 minutes" in texts(
        html_of(text), '//ul[@class="changes"]/li')


async def test_times_are_utc_in_time_elements_rewritten_by_a_script_file(gw: Gateway) -> None:
    created = await gw.create(ORDERS)
    approver = await signed_in(gw, "approver")
    for path in ("/ui/inbox", f"/ui/requests/{created['id']}"):
        status, text, response = await approver.get(path)
        tree = html_of(text)
        times = tree.xpath("//time[@data-local]")
        assert len(times) >= 2
        for element in times:
            assert element.get("datetime").endswith("Z")
            when = parse_time(element.get("datetime"))
            assert element.text_content() == when.strftime("%Y-%m-%d %H:%M UTC")
        assert created["createdAt"] in [t.get("datetime") for t in times]
        assert texts(tree, "//footer//*[@data-time-zone]") == ["times in UTC"]
        # The script that shows them in local time is a file: no inline script, which the
        # Content-Security-Policy (script-src 'self') would block anyway.
        scripts = tree.xpath("//script")
        assert scripts and all(s.get("src") and not (s.text or "").strip() for s in scripts)
        assert "unsafe-inline" not in response.headers["Content-Security-Policy"]
        assert not tree.xpath("//@*[starts-with(name(), 'on')]")
    status, script, _ = await approver.get("/ui/static/ui.js")
    assert status == 200 and "Intl.DateTimeFormat" in script and "time[data-local]" in script


async def test_names_are_read_in_chunks_and_missing_keys_left_out(gw: Gateway,
                                                                  peek: Any) -> None:
    from gateway.store import catalog as catalog_store
    from gateway.store.ui import KEYS_PER_QUERY, records_by_key

    keys = [f"missing/{i}" for i in range(2 * KEYS_PER_QUERY + 1)] + [ORDERS, PROFILE]
    found = records_by_key(peek(), catalog_store.ITEMS, keys)
    assert {k: r["name"] for k, r in found.items()} == {ORDERS: "Orders",
                                                         PROFILE: "Customer Profile"}
