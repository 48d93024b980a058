"""The web inbox in a real browser (Chromium through Playwright): people's paths through it,
from sign-in to redelivery. Screenshots of each page at 375 and 1440 px wide land under the
test's temporary directory (`screens/`).

Without Chromium these tests skip with one line (tests/support/browser.py); CI requires them.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from gateway.timeutil import parse_time
from tests.conftest import EMAILS, ORDERS, TOKENS, Gateway, hooked_sections
from tests.support.browser import chromium

WIDTHS = (375, 1440)


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    async with chromium() as launched:
        yield launched


class People:
    """One browser context (its own cookies) per person, all on one gateway."""

    def __init__(self, browser: Any, gw: Gateway, shots: Path) -> None:
        self.browser = browser
        self.base = str(gw.client.make_url("/")).rstrip("/")
        self.shots = shots
        self.pages: dict[str, Any] = {}

    async def sign_in(self, who: str, **context_options: Any) -> Any:
        context = await self.browser.new_context(viewport={"width": 1440, "height": 900},
                                                 **context_options)
        page = await context.new_page()
        page.on("dialog", _accept)
        await page.goto(self.base + "/ui/")
        await page.get_by_label("Token").fill(TOKENS[who])
        await page.get_by_role("button", name="Sign in").click()
        await page.get_by_role("heading", name="Inbox").wait_for()
        self.pages[who] = page
        return page

    async def shoot(self, page: Any, name: str) -> None:
        """The page at both widths, whole (a phone's 375 px and a desktop's 1440 px)."""
        self.shots.mkdir(exist_ok=True)
        for width in WIDTHS:
            await page.set_viewport_size({"width": width, "height": 900})
            await page.screenshot(path=str(self.shots / f"{name}-{width}.png"), full_page=True)
        await page.set_viewport_size({"width": 1440, "height": 900})

    async def close(self) -> None:
        for page in self.pages.values():
            await page.context.close()


async def _accept(dialog: Any) -> None:
    await dialog.accept()


@pytest.fixture
async def people(browser: Any, gw: Gateway, tmp_path: Path) -> AsyncIterator[People]:
    crowd = People(browser, gw, tmp_path / "screens")
    yield crowd
    await crowd.close()


async def text_of(page: Any) -> str:
    return str(await page.locator("main").inner_text())


async def test_sign_in_and_sign_out(people: People) -> None:
    context = await people.browser.new_context()
    page = await context.new_page()
    await page.goto(people.base + "/ui/inbox")
    assert "/ui/sign-in" in page.url
    await people.shoot(page, "sign-in")
    await page.get_by_label("Token").fill("wrong-token-wrong-token")
    await page.get_by_role("button", name="Sign in").click()
    assert "unknown or revoked" in await text_of(page)
    await page.get_by_label("Token").fill(TOKENS["other"])
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_role("heading", name="Inbox").wait_for()
    assert page.url.endswith("/ui/inbox")
    assert EMAILS["other"] in await page.locator("header").inner_text()
    assert "Nothing waits for you" in await text_of(page)
    await people.shoot(page, "inbox-empty")
    cookies = {c["name"]: c for c in await context.cookies()}
    assert cookies["gw_session"]["httpOnly"] and cookies["gw_session"]["sameSite"] == "Strict"
    assert cookies["gw_session"]["secure"]
    await page.get_by_role("button", name="Sign out").click()
    assert "You are signed out" in await text_of(page)
    await page.goto(people.base + "/ui/requests")
    assert "/ui/sign-in" in page.url
    await context.close()


async def test_request_approve_shorter_second_recipient_sees_who(people: People,
                                                                 gw: Gateway) -> None:
    # The requester asks through the use-case policy's form.
    john = await people.sign_in("requester")
    await john.get_by_role("navigation", name="Main").get_by_role(
        "link", name="Request access").click()
    await people.shoot(john, "request-access")
    await john.get_by_role("link", name="Request access to Customer Profile").click()
    await john.get_by_label("Use case").select_option(label="Churn Risk Analysis")
    await john.get_by_label("Group A").check()  # the page came back with the use case's values
    await john.get_by_label("1 week").check()
    await john.get_by_label("Reason (optional)").fill("Churn model for Q4.")
    await people.shoot(john, "request-form")
    await john.get_by_role("button", name="Request access").click()
    assert "Your request is sent" in await text_of(john)
    request_id = re.search(r"/ui/requests/(\d+)", john.url).group(1)  # type: ignore[union-attr]
    assert "Pending" in await text_of(john)

    # Jane (curator) approves it from her inbox, for 4 hours instead of a week.
    jane = await people.sign_in("approver")
    card = jane.locator(f"#request-{request_id}")
    text = await card.inner_text()
    assert EMAILS["requester"] in text and "Churn Risk Analysis" in text and "Group A" in text
    assert "1 week" in text and "Churn model for Q4." in text
    await people.shoot(jane, "inbox")
    await card.get_by_text("Approve for another duration").click()
    await card.get_by_label("4 hours").check()
    await card.get_by_label("Comment (the requester reads it)").fill("Four hours is enough.")
    await card.get_by_role("button", name="Approve").click()
    assert "Approved: the requester is told." in await text_of(jane)
    assert await jane.locator(f"#request-{request_id}").count() == 0

    # Bob (owner, the other recipient) no longer has it to decide, and sees who did.
    bob = await people.sign_in("owner")
    assert await bob.locator(f"#request-{request_id}").count() == 0
    handled = await bob.locator(".recent").inner_text()
    assert f"Approved by {EMAILS['approver']}" in handled and "Four hours is enough." in handled
    await people.shoot(bob, "inbox-handled")

    # John sees APPROVED and the time left.
    await john.goto(f"{people.base}/ui/requests/{request_id}")
    text = await text_of(john)
    assert "Approved" in text and re.search(r"\((3 h 5\d min|4 h) left\)", text), text
    assert "Four hours is enough." in text and "Duration: asked 1 week, approved 4 hours" in text
    await people.shoot(john, "request-approved")
    await john.get_by_role("link", name="My requests").first.click()
    assert re.search(r"access ends .*\((3 h 5\d min|4 h) left\)", await text_of(john))
    await people.shoot(john, "my-requests")
    api = await gw.get(f"/v1/resource-access-requests/{request_id}")
    assert api["state"] == "APPROVED" and api["processedBy"] == EMAILS["approver"]


async def test_reject_with_comment_cancel_and_html_shown_as_text(people: People,
                                                                 gw: Gateway) -> None:
    hostile = "<script>window.pwned = 1</script><b>bold?</b>"
    john = await people.sign_in("requester")
    await john.goto(people.base + "/ui/request-access")
    await john.get_by_role("link", name="Request access to Orders").click()
    await john.get_by_label("Reason").fill(hostile)
    await john.get_by_role("button", name="Request access").click()
    assert hostile in await text_of(john)  # shown as text, not run, not bold
    assert await john.evaluate("typeof window.pwned") == "undefined"
    first = re.search(r"/ui/requests/(\d+)", john.url).group(1)  # type: ignore[union-attr]

    jane = await people.sign_in("approver")
    assert hostile in await jane.locator(f"#request-{first}").inner_text()
    await jane.goto(f"{people.base}/ui/requests/{first}")
    await people.shoot(jane, "request-to-decide")
    await jane.get_by_label("Comment (the requester reads it)").fill("Not for <i>this</i> team.")
    await jane.get_by_role("button", name="Reject").click()  # confirmed in a dialog
    assert "Rejected: the requester is told." in await text_of(jane)

    await john.goto(f"{people.base}/ui/requests/{first}")
    text = await text_of(john)
    assert "Rejected" in text and "Not for <i>this</i> team." in text

    # Asked again, then cancelled; and the reason changed on the way.
    await john.goto(people.base + "/ui/request-access?item=" + ORDERS)
    await john.get_by_label("Reason").fill("Second try.")
    await john.get_by_label("4 hours").check()
    await john.get_by_role("button", name="Request access").click()
    second = re.search(r"/ui/requests/(\d+)", john.url).group(1)  # type: ignore[union-attr]
    await john.locator("#reason").fill("Second try, for the audit.")
    await john.get_by_role("button", name="Save").click()
    assert "The reason is changed." in await text_of(john)
    await john.get_by_role("button", name="Cancel request").click()  # confirmed in a dialog
    text = await text_of(john)
    assert "The request is cancelled." in text and "Cancelled" in text
    assert "cancelled by the requester" in text
    api = await gw.get(f"/v1/resource-access-requests/{second}")
    assert api["state"] == "CANCELLED" and api["reason"] == "Second try, for the audit."
    await jane.goto(people.base + "/ui/inbox")
    assert await jane.locator(f"#request-{second}").count() == 0


async def test_csrf_and_another_users_cookie_in_the_browser(people: People,
                                                           gw: Gateway) -> None:
    created = await gw.create(ORDERS)
    jane = await people.sign_in("approver")
    path = f"{people.base}/ui/requests/{created['id']}/process"
    refused = await jane.context.request.post(path, form={"decision": "approve"},
                                              max_redirects=0)
    assert refused.status == 403 and "did not come from this site" in await refused.text()
    olive = await people.sign_in("other")
    await olive.goto(f"{people.base}/ui/requests/{created['id']}")
    assert "you may not see this request" in (await text_of(olive)).lower()
    # Olive with a token lifted from Jane's page still acts as Olive: refused.
    await jane.goto(f"{people.base}/ui/requests/{created['id']}")
    token = await jane.locator("input[name=csrf]").first.get_attribute("value")
    forged = await olive.context.request.post(path, form={"decision": "approve",
                                                          "csrf": token or ""},
                                              max_redirects=0)
    assert forged.status == 403
    assert (await gw.get(f"/v1/resource-access-requests/{created['id']}"))["state"] == "PENDING"


@pytest.fixture
async def hooked_gw(start_gateway: Any, receiver: Any, mail_sink: Any) -> Gateway:
    gateway: Gateway = await start_gateway(**hooked_sections(receiver, mail_sink, path="/fail"))
    return gateway


async def test_admin_redelivers_a_failed_delivery(browser: Any, hooked_gw: Gateway,
                                                 receiver: Any, tmp_path: Path) -> None:
    people = People(browser, hooked_gw, tmp_path / "screens")
    created = await hooked_gw.create(ORDERS)
    await receiver.wait_for(1)
    root = await people.sign_in("admin")
    await root.get_by_role("link", name="Deliveries").click()
    await root.get_by_label("State").select_option("failed")
    await root.get_by_role("button", name="Filter").click()
    row = root.locator("table.deliveries tbody tr").first
    await row.wait_for()
    text = await row.inner_text()
    assert "failed" in text and "http-status" in text and "HTTP 500" in text
    assert created["id"] in text
    await row.get_by_text("Answer snippet").click()
    assert "Boom" in await row.inner_text()
    await people.shoot(root, "deliveries")
    await row.get_by_role("button", name="Redeliver").click()  # confirmed in a dialog
    assert "A new attempt is queued" in await text_of(root)
    await receiver.wait_for(2)
    assert len(receiver.on("/fail")) == 2
    await root.reload()
    rows = root.locator("table.deliveries tbody tr")
    assert await rows.count() == 2 and "redelivery" in await rows.first.inner_text()
    for section, name in (("policies", "policies"), ("items", "items")):
        await root.goto(f"{people.base}/ui/{section}")
        await people.shoot(root, name)
    await root.get_by_role("link", name="Orders", exact=True).click()
    await people.shoot(root, "item-edit")
    await people.close()


async def test_admin_edits_an_item_through_the_catalog_rules(people: People,
                                                            gw: Gateway) -> None:
    root = await people.sign_in("admin")
    await root.goto(f"{people.base}/ui/items")
    await root.get_by_role("link", name="No policy").click()
    editor = root.get_by_label(re.compile("The item as JSON"))
    entry = await editor.input_value()
    await editor.fill(entry.replace('"policyCode": null', '"policyCode": "free-policy"'))
    await root.get_by_role("button", name="Save").click()
    assert "Saved." in await text_of(root)
    await editor.fill('{"name": 1}')
    await root.get_by_role("button", name="Save").click()
    assert "name" in await root.get_by_role("alert").inner_text()
    item = await gw.get("/v1/items/no%2Fpolicy")
    assert item["policyCode"] == "free-policy"


async def test_times_in_the_browsers_time_zone(people: People, gw: Gateway) -> None:
    created = await gw.create(ORDERS)
    asked = parse_time(created["createdAt"])
    jane = await people.sign_in("approver", timezone_id="Asia/Tokyo", locale="en-GB")
    asked_at = jane.locator(f'#request-{created["id"]} time[datetime="{created["createdAt"]}"]')
    tokyo = asked.astimezone(ZoneInfo("Asia/Tokyo"))
    shown = await asked_at.inner_text()
    assert tokyo.strftime("%H:%M") in shown and "GMT+9" in shown, shown
    assert str(tokyo.day) in shown and "UTC" not in shown
    assert await asked_at.get_attribute("title") == asked.strftime("%Y-%m-%d %H:%M UTC")
    assert await jane.locator("footer").inner_text() == (
        "Access Request Gateway · times in your time zone (Asia/Tokyo)")
    await people.shoot(jane, "inbox-tokyo")
    await jane.goto(f"{people.base}/ui/requests/{created['id']}")
    for element in await jane.locator("time[data-local]").all():
        assert "GMT+9" in await element.inner_text()

    # Another zone, another hour; without JavaScript, UTC.
    john = await people.sign_in("requester", timezone_id="America/Sao_Paulo", locale="en-GB")
    await john.goto(f"{people.base}/ui/requests/{created['id']}")
    shown = await john.locator(f'time[datetime="{created["createdAt"]}"]').first.inner_text()
    assert asked.astimezone(ZoneInfo("America/Sao_Paulo")).strftime("%H:%M") in shown
    assert "GMT-3" in shown
    context = await people.browser.new_context(java_script_enabled=False,
                                               timezone_id="Asia/Tokyo")
    page = await context.new_page()
    await page.goto(people.base + "/ui/sign-in")
    await page.get_by_label("Token").fill(TOKENS["approver"])
    await page.get_by_role("button", name="Sign in").click()
    shown = await page.locator(f'time[datetime="{created["createdAt"]}"]').first.inner_text()
    assert shown == asked.strftime("%Y-%m-%d %H:%M UTC")
    assert "times in UTC" in await page.locator("footer").inner_text()
    await context.close()


async def test_the_form_takes_durations_as_people_type_them(people: People,
                                                            gw: Gateway) -> None:
    john = await people.sign_in("requester")
    await john.goto(people.base + "/ui/request-access?item=" + ORDERS)
    await john.get_by_label("Reason").fill("Year-end audit.")
    custom = john.get_by_label(re.compile("^Custom duration"))
    await custom.fill("3 fortnights")
    assert await john.get_by_label("Custom", exact=True).is_checked()  # typing chose it
    await john.get_by_role("button", name="Request access").click()
    alert = await john.get_by_role("alert").inner_text()
    assert alert.startswith("Duration: “fortnights” is not a unit of time"), alert
    await people.shoot(john, "request-form-refused")
    await john.get_by_role("link", name="Duration").click()
    assert await custom.evaluate("element => element === document.activeElement")
    await custom.fill("3 days")
    await john.get_by_role("button", name="Request access").click()
    assert "Your request is sent" in await text_of(john)
    assert "for 3 days" in await john.locator(".who-line").inner_text()
    request_id = re.search(r"/ui/requests/(\d+)", john.url).group(1)  # type: ignore[union-attr]
    activity = await gw.get(f"/v1/resource-access-requests/{request_id}/activity")
    assert activity["items"][0]["changes"] == {"duration": "P3D"}
