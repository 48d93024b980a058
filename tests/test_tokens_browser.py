"""The Tokens page in a real browser (Chromium through Playwright, as tests/test_ui_browser.py):
create a token, see it once with its Copy button, use it, revoke it. Screenshots at 375 and
1440 px land under the test's temporary directory. Without Chromium: skipped with one line."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import Gateway
from tests.support.browser import chromium
from tests.test_tokens import PAT, call_with
from tests.test_ui_browser import People, text_of


@pytest.fixture
async def people(gw: Gateway, tmp_path: Path) -> AsyncIterator[People]:
    async with chromium() as browser:
        crowd = People(browser, gw, tmp_path / "screens")
        yield crowd
        await crowd.close()


async def test_create_copy_use_and_revoke_a_token(people: People, gw: Gateway) -> None:
    john = await people.sign_in("requester")
    await john.context.grant_permissions(["clipboard-read", "clipboard-write"])
    await john.get_by_role("navigation", name="Main").get_by_role("link", name="Tokens").click()
    await john.get_by_role("heading", name="Tokens", exact=True).wait_for()
    assert "No tokens" in await text_of(john)
    await people.shoot(john, "tokens-empty")
    await john.get_by_label("Name").fill("CI pipeline")
    await john.get_by_label("30 days").check()
    await john.get_by_role("button", name="Create token").click()
    await john.get_by_role("heading", name="Your new token “CI pipeline”").wait_for()
    field = john.get_by_label("Token", exact=True)
    secret = await field.input_value()
    assert PAT.fullmatch(secret)
    assert "Copy it now: it is not shown again" in await text_of(john)
    await people.shoot(john, "tokens-created")
    copy = john.get_by_role("button", name="Copy")
    await copy.click()  # shown by ui.js; the clipboard holds the token
    await john.get_by_role("button", name="Copied").wait_for()
    assert await john.evaluate("navigator.clipboard.readText()") == secret
    assert (await call_with(gw, secret, "GET", "/v1/tokens"))[0] == 200

    await john.goto(people.base + "/ui/tokens")  # shown once: not on the next visit
    assert secret not in await john.content()
    assert "CI pipeline" in await text_of(john)
    await john.get_by_role("button", name="Revoke CI pipeline").click()  # confirm accepted
    await john.get_by_text("The token is revoked").wait_for()
    assert "No tokens" in await text_of(john)
    await people.shoot(john, "tokens-revoked")
    assert (await call_with(gw, secret, "GET", "/v1/tokens"))[0] == 401
