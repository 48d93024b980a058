"""Sign-in with the identity provider in a real browser (Chromium through Playwright) against a
real provider (tests/node/oidc_provider.js): the IdP at http://localhost, the gateway at
http://127.0.0.1 — two sites, as in a deployment, so the cookies' SameSite rules are the
real ones. Screenshots land under the test's temporary directory (`screens/`).

Without Chromium or the provider these tests skip with one line; CI requires both.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateway.api.keys import DIRECTORY
from tests.conftest import EMAILS
from tests.support.browser import chromium
from tests.support.oidc import OpenIDProvider, gateway_with_provider, node_path


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    node_path()  # skip (or fail in CI) before launching anything
    async with chromium() as launched:
        yield launched


@pytest.fixture
async def providers() -> AsyncIterator[list[OpenIDProvider]]:
    started: list[OpenIDProvider] = []
    yield started
    for op in started:
        op.stop()


async def log_in(browser: Any, base: str, login: str, shots: Path | None = None) -> Any:
    """From a page of the inbox, through the IdP's login form as `login`; answers the page
    (wherever the gateway sent it)."""
    context = await browser.new_context(viewport={"width": 1440, "height": 900})
    page = await context.new_page()
    await page.goto(base + "/ui/requests")
    assert "/ui/sign-in" in page.url
    if shots is not None:
        shots.mkdir(exist_ok=True)
        await page.screenshot(path=str(shots / "sign-in-with-idp.png"), full_page=True)
    await page.get_by_role("button", name="Sign in with Acme").click()
    await page.locator("input[name=login]").fill(login)
    await page.locator("input[name=password]").fill("any password")
    await page.get_by_role("button", name="Sign-in").click()
    await page.wait_for_url(lambda url: url.startswith(base))
    await page.wait_for_load_state()
    return page


async def test_a_person_signs_in_with_the_idp_and_lands_where_they_were_going(
        browser: Any, start_gateway: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        providers: list[OpenIDProvider]) -> None:
    gw, op = await gateway_with_provider(start_gateway, tmp_path, monkeypatch)
    providers.append(op)
    base = str(gw.client.make_url("/")).rstrip("/")
    page = await log_in(browser, base, "johndoe", tmp_path / "screens")
    await page.get_by_role("heading", name="My requests").wait_for()
    assert page.url == base + "/ui/requests"
    assert EMAILS["requester"] in await page.locator("header").inner_text()
    cookies = {c["name"]: c for c in await page.context.cookies()}
    assert cookies["gw_session"]["sameSite"] == "Strict" and cookies["gw_session"]["httpOnly"]
    assert not any(name.startswith("gw_oidc_") for name in cookies)  # used, then dropped
    await page.get_by_role("button", name="Sign out").click()
    assert "You are signed out" in await page.locator("main").inner_text()
    await page.context.close()


async def test_an_unknown_person_is_refused_unless_jit_creates_them(
        browser: Any, start_gateway: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        providers: list[OpenIDProvider]) -> None:
    gw, op = await gateway_with_provider(start_gateway, tmp_path, monkeypatch, jit=False)
    providers.append(op)
    base = str(gw.client.make_url("/")).rstrip("/")
    page = await log_in(browser, base, "newcomer")
    text = await page.locator("main").inner_text()
    assert "newcomer@acme.com, who is not a user of this gateway" in text
    assert EMAILS["admin"] in text
    await page.screenshot(path=str(tmp_path / "refused.png"), full_page=True)
    await page.context.close()

    (tmp_path / "jit").mkdir()
    gw, op = await gateway_with_provider(start_gateway, tmp_path / "jit", monkeypatch,
                                         jit=True)
    providers.append(op)
    base = str(gw.client.make_url("/")).rstrip("/")
    page = await log_in(browser, base, "newcomer")
    await page.get_by_role("heading", name="My requests").wait_for()
    person = await gw.app[DIRECTORY].get("newcomer@acme.com")
    assert person is not None and person.source == "oidc"
    assert sorted(person.teams) == ["analytics", "onboarding"]
    await page.context.close()
