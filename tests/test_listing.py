"""Listing: every filter field and operator, multi-key order, scopes, cursors (SPEC §9)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.conftest import EMAILS, ORDERS, PROFILE, Gateway

REQ = "/v1/resource-access-requests"


async def _ids(gw: Gateway, query: str, user: str = "admin") -> list[str]:
    status, page = await gw.call("GET", f"{REQ}?{query}", user=user)
    assert status == 200, page
    return [r["id"] for r in page["items"]]


@pytest.fixture
async def sample(gw: Gateway) -> dict[str, Any]:
    """Five requests in several states, created in id order."""
    a = await gw.create(ORDERS)                                   # approved
    b = await gw.create(ORDERS, action="write-data")              # rejected
    c = await gw.create(PROFILE)                                  # pending
    d = await gw.create(ORDERS, user="admin", target=EMAILS["other"])  # pending, admin's
    e = await gw.create(ORDERS, kind="team", target="analytics")  # cancelled
    await gw.process(a["id"])
    await gw.process(b["id"], "reject")
    await gw.call("DELETE", f"{REQ}/{e['id']}")
    return {"a": a["id"], "b": b["id"], "c": c["id"], "d": d["id"], "e": e["id"]}


async def test_default_scope_is_own_requests(gw: Gateway, sample: dict[str, Any]) -> None:
    mine = await _ids(gw, "", user="requester")
    assert sorted(mine) == sorted([sample[k] for k in "abce"])
    theirs = await _ids(gw, "", user="other")  # d targets them
    assert theirs == [sample["d"]]


async def test_own_pages_merge_my_requests_and_those_for_me(gw: Gateway,
                                                            sample: dict[str, Any]) -> None:
    """"Own" is requested by me OR for me: each row once (a, b, c are both), in order, on
    every page, whatever the order."""
    f = (await gw.create(ORDERS, user="admin", target=EMAILS["requester"],
                         action="admin-for-john"))["id"]
    expected = {sample[k] for k in "abce"} | {f}
    for order in ("-createdAt", "state,createdAt", "-processedAt,action", "expiresAt"):
        full = await _ids(gw, f"order={order}", user="requester")
        assert sorted(full) == sorted(expected) and len(full) == len(expected), order
        assert full == [i for i in await _ids(gw, f"all=true&order={order}")
                        if i in expected], order
        seen: list[str] = []
        cursor = None
        for _ in range(10):
            suffix = f"&cursor={cursor}" if cursor else ""
            status, page = await gw.call("GET", f"{REQ}?order={order}&limit=2{suffix}",
                                         user="requester")
            assert status == 200, page
            seen += [r["id"] for r in page["items"]]
            cursor = page["nextCursor"]
            if cursor is None:
                break
        assert seen == full, order


async def test_default_order_is_newest_first(gw: Gateway, sample: dict[str, Any]) -> None:
    assert await _ids(gw, "all=true") == [sample[k] for k in "edcba"]


async def test_actionable(gw: Gateway, sample: dict[str, Any]) -> None:
    assert sorted(await _ids(gw, "actionable=true", user="approver")) == sorted(
        [sample["c"], sample["d"]])
    assert await _ids(gw, "actionable=true", user="owner") == [sample["c"]]
    assert await _ids(gw, "actionable=true", user="other") == []
    # Admins may process any pending request but their own.
    assert await _ids(gw, "actionable=true", user="admin") == [sample["c"]]


async def test_all_is_for_admins_and_integrations(gw: Gateway, sample: dict[str, Any]) -> None:
    assert len(await _ids(gw, "all=true", user="integration")) == 5
    status, answer = await gw.call("GET", f"{REQ}?all=true", user="requester")
    assert status == 403 and answer["error"]["code"] == "forbidden"


@pytest.mark.parametrize(("query", "expected"), [
    ("state=PENDING", "dc"),
    ("state=pending", "dc"),
    ("state=in:APPROVED,REJECTED", "ba"),
    ("state=ne:PENDING", "eba"),
    ("action=write-data", "b"),
    ("action=ne:read-data", "b"),
    ("resource=" + PROFILE.replace("/", "%2F"), "c"),
    ("resource=in:" + PROFILE.replace("/", "%2F") + ",nothing", "c"),
    ("target=analytics", "e"),
    ("target=" + EMAILS["other"], "d"),
    ("requestedBy=" + EMAILS["admin"], "d"),
    ("requestedBy=ne:" + EMAILS["admin"], "ecba"),
    ("recipients=" + EMAILS["owner"], "c"),
    ("recipients=in:" + EMAILS["owner"] + ",nobody@acme.com", "c"),
    ("recipients=ne:" + EMAILS["owner"], "edba"),
    ("processedAt=ge:2000-01-01", "ba"),
    ("processedAt=lt:2000-01-01", ""),
    ("createdAt=lt:2000-01-01", ""),
    ("createdAt=gt:2000-01-01T00:00:00Z", "edcba"),
    ("expiresAt=gt:2000-01-01", "edcba"),
    ("expiresAt=le:2000-01-01", ""),
    ("state=PENDING&action=read-data", "dc"),
])
async def test_filters(gw: Gateway, sample: dict[str, Any], query: str, expected: str) -> None:
    assert await _ids(gw, f"all=true&{query}") == [sample[k] for k in expected]


async def test_request_id_operators(gw: Gateway, sample: dict[str, Any]) -> None:
    a, c, e = sample["a"], sample["c"], sample["e"]
    assert await _ids(gw, f"all=true&requestId={c}") == [c]
    assert await _ids(gw, f"all=true&requestId=gt:{c}&order=createdAt") == [sample["d"], e]
    assert await _ids(gw, f"all=true&requestId=ge:{c}&requestId=lt:{e}&order=createdAt") == [
        c, sample["d"]]
    assert await _ids(gw, f"all=true&requestId=le:{a}") == [a]
    assert await _ids(gw, f"all=true&requestId=in:{a},{e}") == [e, a]


async def test_time_filters_by_instant_and_day(gw: Gateway, sample: dict[str, Any]) -> None:
    first = await gw.get(f"{REQ}/{sample['a']}", user="admin")
    created = first["createdAt"]
    assert await _ids(gw, f"all=true&createdAt={created}") == [sample["a"]]
    assert await _ids(gw, f"all=true&createdAt=le:{created}") == [sample["a"]]
    day = created[:10]
    assert len(await _ids(gw, f"all=true&createdAt={day}")) == 5
    assert await _ids(gw, f"all=true&createdAt=ne:{day}") == []
    assert len(await _ids(gw, f"all=true&createdAt=le:{day}")) == 5
    assert await _ids(gw, f"all=true&createdAt=gt:{day}") == []
    assert await _ids(gw, f"all=true&createdAt=lt:{day}") == []


async def test_order_on_several_keys(gw: Gateway, sample: dict[str, Any]) -> None:
    ids = await _ids(gw, "all=true&order=state,-createdAt")
    # APPROVED a, CANCELLED e, PENDING d c, REJECTED b
    assert ids == [sample[k] for k in "aedcb"]
    ids = await _ids(gw, "all=true&order=-state,createdAt")
    assert ids == [sample[k] for k in "bcdea"]
    ids = await _ids(gw, "all=true&order=state&state=in:PENDING,REJECTED")
    assert ids == [sample[k] for k in "cdb"]  # ties by id, in the order's direction
    ids = await _ids(gw, "all=true&order=-action,createdAt")
    assert ids == [sample[k] for k in "bacde"]
    ids = await _ids(gw, "all=true&order=processedAt,createdAt")  # unprocessed first
    assert ids == [sample[k] for k in "cdeab"]
    ids = await _ids(gw, "all=true&order=-expiresAt")
    assert ids == [sample[k] for k in "edcba"]


@pytest.mark.parametrize("filters", ["", "&state=in:PENDING,REJECTED,CANCELLED",
                                     "&state=ne:PENDING&createdAt=ge:2000-01-01"])
async def test_cursor_walks_every_row_once(gw: Gateway, sample: dict[str, Any],
                                           filters: str) -> None:
    """Also for orders that start with the state, which run as one part per state."""
    for order in ("-createdAt", "state,createdAt", "-processedAt,action", "expiresAt",
                  "state,-createdAt", "-state,createdAt", "state", "-state,-action"):
        seen: list[str] = []
        query = f"all=true&limit=1&order={order}{filters}"
        full = await _ids(gw, f"all=true&order={order}{filters}")
        assert full, order
        cursor = None
        for _ in range(10):
            suffix = f"&cursor={cursor}" if cursor else ""
            status, page = await gw.call("GET", f"{REQ}?{query}{suffix}", user="admin")
            assert status == 200
            seen += [r["id"] for r in page["items"]]
            cursor = page["nextCursor"]
            if cursor is None:
                break
        assert seen == full, order


async def test_pagination_under_concurrent_inserts(gw: Gateway) -> None:
    """Rows that existed when paging began are seen exactly once while others are added."""
    before = []
    for i in range(30):
        before.append((await gw.create(ORDERS, action=f"act-{i}"))["id"])
    stop = asyncio.Event()

    async def writer() -> None:
        i = 0
        while not stop.is_set() and i < 200:
            await gw.create(ORDERS, action=f"new-{i}")
            i += 1

    task = asyncio.create_task(writer())
    seen: list[str] = []
    cursor = None
    for _ in range(100):
        suffix = f"&cursor={cursor}" if cursor else ""
        page = await gw.get(f"{REQ}?all=true&limit=3&order=createdAt{suffix}", user="admin")
        seen += [r["id"] for r in page["items"]]
        cursor = page["nextCursor"]
        await asyncio.sleep(0)
        if cursor is None:
            break
    stop.set()
    await task
    assert len(seen) == len(set(seen)), "a row was returned twice"
    assert set(before) <= set(seen), "a row that existed was skipped"
    assert seen == sorted(seen, key=int)


@pytest.mark.parametrize("query", [
    "colour=red", "state=like:PENDING", "state=DONE", "order=name", "order=-createdAt,x",
    "limit=0", "limit=501", "limit=ten", "cursor=gar.bage", "requestId=abc", "createdAt=yesterday",
    "actionable=yes", "all=1", "createdAt=in:2026-01-01,2026-01-02", "recipients=gt:a",
    "limit=5&limit=6",
])
async def test_unknown_or_bad_parameters_are_400(gw: Gateway, query: str) -> None:
    status, answer = await gw.call("GET", f"{REQ}?{query}", user="admin")
    assert status == 400, answer
    assert answer["error"]["details"]["field"]


async def test_cursor_of_another_order_is_refused(gw: Gateway, sample: dict[str, Any]) -> None:
    status, page = await gw.call("GET", f"{REQ}?all=true&limit=1", user="admin")
    cursor = page["nextCursor"]
    status, answer = await gw.call("GET", f"{REQ}?all=true&limit=1&order=state&cursor={cursor}",
                                   user="admin")
    # Well-formed, but no page of this listing: 404 (the document cannot list the cursors).
    assert status == 404 and answer["error"]["details"]["field"] == "cursor"
    status, answer = await gw.call("GET", f"{REQ}?all=true&cursor=garbage", user="admin")
    assert status == 404 and answer["error"]["code"] == "cursor-not-found"
