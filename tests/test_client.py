"""The command-line client (SPEC §11, issue 12): the real `gateway` program, run as a process,
against a real gateway on a real store (SQLite file, or PostgreSQL with --backend postgresql).

Every run goes through `Client.run`, which also checks that no token ever appears in what the
program prints. The server runs in this process, so the client is spawned with
asyncio.create_subprocess_exec: the event loop keeps serving while the client waits.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import pty
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp.test_utils import unused_port

from gateway.timeutil import parse_time
from tests.conftest import (
    EMAILS,
    HOOK_SECRET,
    ORDERS,
    PROFILE,
    TOKENS,
    Gateway,
    hooked_sections,
)

ANSI = re.compile(r"\x1b\[[0-9;]*m")
SERVER_MODULES = ("aiohttp", "yaml", "psycopg", "jinja2", "lxml", "gateway.config",
                  "gateway.store", "gateway.app", "gateway.api")


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def client_env(url: str, user: str | None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("GATEWAY_TOKEN", "GATEWAY_URL", "NO_COLOR")}
    env["GATEWAY_URL"] = url
    if user is not None:
        env["GATEWAY_TOKEN"] = TOKENS[user]
    env.update(extra)
    return env


def assert_no_token(*texts: str) -> None:
    for text in texts:
        for token in TOKENS.values():
            assert token not in text


class Client:
    """`gateway ...` as a process, as one of the test users (the token in the environment)."""

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        self.url = str(gw.client.make_url("/")).rstrip("/")

    async def run(self, *args: str, user: str | None = "requester",
                  **env: str) -> Result:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway", *args, env=client_env(self.url, user, **env),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        result = Result(proc.returncode or 0, out.decode(), err.decode())
        assert_no_token(result.out, result.err)
        return result


@pytest.fixture
async def client(gw: Gateway) -> Client:
    return Client(gw)


def api_query(**params: str) -> str:
    return "/v1/resource-access-requests?" + urlencode(params)


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


# --- creating requests ------------------------------------------------------------------

async def test_request_access_for_a_user_a_team_and_a_role(client: Client) -> None:
    mine = await client.run("user", "request-access", EMAILS["requester"],
                            "--action", "read-data", "--resource", ORDERS,
                            "--reason", "Monthly revenue report.", "--duration", "PT4H")
    assert mine.code == 0, mine.err
    assert re.fullmatch(r"\d+  PENDING  read-data on sales/orders for user:johndoe@acme.com"
                        r"  expires in 29d 23h\n", mine.out)
    request_id = mine.out.split()[0]
    stored = await client.gw.get(f"/v1/resource-access-requests/{request_id}")
    assert stored["reason"] == "Monthly revenue report."

    team = await client.run("team", "request-access", "analytics", "--json",
                            "--action", "write-data", "--resource", PROFILE,
                            "--use-case", "use-case/Churn Risk Analysis",
                            "--extra", "Group A", "--extra", "Group B", "--audience", "Q4 team",
                            "--shareable", "--scope", "EU", "--cascades")
    assert team.code == 0, team.err
    created = team.json()
    assert created == await client.gw.get(f"/v1/resource-access-requests/{created['id']}")
    assert created["target"] == {"type": "team", "id": "analytics"}
    assert created["extraInformation"]["values"] == ["Group A", "Group B"]
    assert (created["shareable"], created["scope"], created["cascades"]) == (True, "EU", True)

    role = await client.run("role", "request-access", "analyst", "--json", "--action",
                            "read-data", "--resource", ORDERS, "--reason", "For the role.")
    assert role.code == 0, role.err
    assert role.json()["target"] == {"type": "role", "id": "analyst"}
    assert role.err == ""


async def test_a_refused_creation_is_the_apis_code_and_message(client: Client) -> None:
    refused = await client.run("team", "request-access", "not-my-team", "--action",
                               "read-data", "--resource", ORDERS, "--reason", "x")
    assert refused.code == 1
    assert refused.out == ""
    status, body = await client.gw.call("POST", "/v1/team/not-my-team/request-access",
                                        json={"resource": ORDERS, "reason": "x"})
    assert status == 403
    assert refused.err == (f"gateway: request-access not-my-team: {body['error']['code']}: "
                           f"{body['error']['message']}\n")


# --- listing ----------------------------------------------------------------------------

async def _some_requests(gw: Gateway, count: int) -> list[str]:
    return [(await gw.create(ORDERS, action=f"action-{n}"))["id"] for n in range(count)]


async def test_ls_prints_a_table_for_people(client: Client) -> None:
    ids = await _some_requests(client.gw, 2)
    await client.gw.process(ids[0], remarks="fine", duration="PT2H")
    listed = await client.run("accessrequest", "ls")
    assert listed.code == 0, listed.err
    lines = listed.out.splitlines()
    assert lines[0].split() == ["ID", "STATE", "ACTION", "RESOURCE", "TARGET", "REQUESTED",
                                "BY", "CREATED", "DEADLINE"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert set(rows) == set(ids)
    assert "APPROVED" in rows[ids[0]] and "access ends in 1h 59m" in rows[ids[0]]
    assert "PENDING" in rows[ids[1]] and "expires in 29d 23h" in rows[ids[1]]
    assert "user:johndoe@acme.com" in rows[ids[1]]
    # aligned: every row's state column starts where the header's does
    column = lines[0].index("STATE")
    assert all(line[column - 2:column] == "  " and line[column] != " " for line in lines[1:])
    assert listed.err == "2 requests\n"


async def test_ls_json_is_the_apis_answer(client: Client) -> None:
    await _some_requests(client.gw, 3)
    listed = await client.run("accessrequest", "ls", "--json")
    assert listed.code == 0 and listed.err == ""
    assert listed.json() == await client.gw.get(api_query())
    assert listed.out.count("\n") == 1  # one document, nothing else


async def test_ls_follows_next_cursor_until_limit(client: Client) -> None:
    await _some_requests(client.gw, 7)
    everything = await client.gw.get(api_query(limit="50"))
    paged = await client.run("accessrequest", "ls", "--json", "--page-size", "2")
    assert paged.json() == everything  # four pages, the cursor followed to the end
    first = await client.run("accessrequest", "ls", "--json", "--page-size", "2",
                             "--limit", "5")
    assert first.json()["items"] == everything["items"][:5]
    assert first.json()["nextCursor"] is not None
    rest = await client.run("accessrequest", "ls", "--json", "--cursor",
                            first.json()["nextCursor"])
    assert rest.json()["items"] == everything["items"][5:]
    people = await client.run("accessrequest", "ls", "--limit", "5", "--page-size", "2")
    assert len(people.out.splitlines()) == 1 + 5
    assert people.err.startswith("5 requests; more with --cursor ")


async def test_ls_passes_filters_and_order_through(client: Client) -> None:
    ids = await _some_requests(client.gw, 4)
    await client.gw.process(ids[1])
    await client.gw.process(ids[2], "reject")
    listed = await client.run("accessrequest", "ls", "--json",
                              "--state", "in:PENDING,APPROVED", "--createdAt", "gt:2020-01-01",
                              "--action", "ne:action-3", "--requestedBy=johndoe@acme.com",
                              "--order", "-action")
    assert listed.code == 0, listed.err
    expected = await client.gw.get(api_query(
        state="in:PENDING,APPROVED", createdAt="gt:2020-01-01", action="ne:action-3",
        requestedBy="johndoe@acme.com", order="-action", limit="50"))
    assert listed.json() == expected
    assert [r["id"] for r in expected["items"]] == [ids[1], ids[0]]
    actionable = await client.run("accessrequest", "ls", "--actionable", "--json",
                                  user="approver")
    assert {r["id"] for r in actionable.json()["items"]} == {ids[0], ids[3]}
    everyone = await client.run("accessrequest", "ls", "--all", "--json", user="admin")
    assert len(everyone.json()["items"]) == 4


async def test_ls_bad_filters_are_the_servers_words(client: Client) -> None:
    bad = await client.run("accessrequest", "ls", "--state", "SLEEPING")
    assert (bad.code, bad.out) == (1, "")
    assert bad.err.startswith("gateway: ls: invalid-field: state: expected one of PENDING")
    unknown = await client.run("accessrequest", "ls", "--colour", "blue")
    assert unknown.code == 1
    assert unknown.err.startswith("gateway: ls: invalid-field: colour: unknown query parameter"
                                  " (allowed: action, actionable, all,")
    order = await client.run("accessrequest", "ls", "--order", "-color")
    assert order.code == 1 and "invalid-field: order" in order.err
    dangling = await client.run("accessrequest", "ls", "--state")
    assert dangling.code == 2 and "expected one argument" in dangling.err
    dangling = await client.run("accessrequest", "ls", "--resource", ORDERS, "--someField")
    assert dangling.code == 2 and "--someField needs a value" in dangling.err


# --- one request: get, set, activity, decisions, fulfilment ------------------------------

@pytest.fixture
async def hooked(start_gateway: Callable[..., Any], receiver: Any, mail_sink: Any) -> Client:
    """A gateway whose webhooks fail (HTTP 500) and whose mailhooks are delivered."""
    return Client(await start_gateway(**hooked_sections(receiver, mail_sink, path="/fail")))


async def _settled(gw: Gateway, request_id: str, count: int) -> list[dict[str, Any]]:
    path = f"/v1/resource-access-requests/{request_id}/deliveries"

    async def done() -> bool:
        items = (await gw.get(path))["items"]
        return len(items) == count and all(d["state"] not in ("queued", "sending")
                                           for d in items)

    await eventually(done)
    return (await gw.get(path))["items"]


async def test_get_shows_the_request_its_activity_and_deliveries(hooked: Client) -> None:
    gw = hooked.gw
    request_id = (await gw.create(ORDERS))["id"]
    await gw.process(request_id, remarks="OK for Q4", duration="PT4H")
    deliveries = await _settled(gw, request_id, 2)
    shown = await hooked.run("accessrequest", "get", request_id)
    assert shown.code == 0, shown.err
    assert re.search(rf"^request: +{request_id}$", shown.out, re.M)
    assert re.search(r"^state: +APPROVED$", shown.out, re.M)
    assert re.search(r"^remarks: +OK for Q4$", shown.out, re.M)
    assert re.search(r"^access ends: +\S+ \S+ UTC \(in 3h 59m\)$", shown.out, re.M)
    activity, delivered = shown.out.split("\n\nActivity\n")[1].split("\n\nDeliveries\n")
    assert "PENDING → APPROVED  OK for Q4  duration - → PT4H" in activity
    assert "janesmith@acme.com" in activity
    for record in deliveries:
        line = next(x for x in delivered.splitlines() if x.startswith(record["id"]))
        assert "failed" in line and "http-status" in line
    as_json = await hooked.run("accessrequest", "get", request_id, "--json")
    assert as_json.json() == await gw.get(f"/v1/resource-access-requests/{request_id}")
    listed = await hooked.run("accessrequest", "deliveries", request_id, "--json")
    assert listed.json() == {"items": deliveries}


async def test_set_activity_and_cancel(client: Client) -> None:
    request_id = (await client.gw.create(ORDERS))["id"]
    changed = await client.run("accessrequest", "set", request_id,
                               "--request-reason", "A better reason.", "--json")
    assert changed.code == 0, changed.err
    assert changed.json()["reason"] == "A better reason."
    assert changed.json() == await client.gw.get(f"/v1/resource-access-requests/{request_id}")
    history = await client.run("accessrequest", "activity", request_id, "--json")
    assert history.json() == await client.gw.get(
        f"/v1/resource-access-requests/{request_id}/activity")
    people = await client.run("accessrequest", "activity", request_id)
    assert people.out.splitlines()[0].split() == ["WHEN", "ACTOR", "CHANGE", "COMMENT"]
    assert "reason updated  reason Monthly revenue report. → A better reason." in people.out
    cancelled = await client.run("accessrequest", "cancel", request_id)
    assert cancelled.code == 0
    assert cancelled.out.startswith(f"{request_id}  CANCELLED  read-data on sales/orders")
    again = await client.run("accessrequest", "cancel", request_id)
    assert again.code == 1
    assert again.err.startswith(f"gateway: cancel {request_id}: invalid-transition: ")


async def test_approve_reject_and_fulfil(client: Client) -> None:
    first, second = await _some_requests(client.gw, 2)
    approved = await client.run("accessrequest", "approve", first, "--remarks", "OK",
                                "--duration", "1 hour", "--json", user="approver")
    assert approved.code == 0, approved.err
    assert approved.json() == await client.gw.get(f"/v1/resource-access-requests/{first}")
    assert (approved.json()["state"], approved.json()["remarks"]) == ("APPROVED", "OK")
    granted = parse_time(approved.json()["accessExpiresAt"]) - parse_time(
        approved.json()["processedAt"])
    assert granted.total_seconds() == 3600
    rejected = await client.run("accessrequest", "reject", second, "--remarks", "No.",
                                user="approver")
    assert rejected.code == 0
    assert rejected.out == f"{second}  REJECTED  action-1 on sales/orders for " \
                           f"user:johndoe@acme.com  -\n"
    own = await client.run("accessrequest", "approve", first)  # the requester may not
    assert own.code == 1 and own.err.startswith(f"gateway: approve {first}: ")
    fulfilled = await client.run("accessrequest", "fulfill", first, "--status", "granted",
                                 "--message", "LDAP group added", user="integration")
    assert fulfilled.code == 0, fulfilled.err
    assert re.fullmatch(rf"{first}  GRANTED  action-0 on sales/orders for "
                        rf"user:johndoe@acme.com  access ends in (59m|1h)\n", fulfilled.out)


async def test_several_ids_go_on_past_a_failure(client: Client) -> None:
    ids = await _some_requests(client.gw, 3)
    await client.gw.call("DELETE", f"/v1/resource-access-requests/{ids[1]}")
    result = await client.run("accessrequest", "cancel", ids[0], ids[1], "999999", ids[2])
    assert result.code == 1
    assert [line.split()[:2] for line in result.out.splitlines()] == [
        [ids[0], "CANCELLED"], [ids[2], "CANCELLED"]]
    errors = result.err.splitlines()
    assert errors[0].startswith(f"gateway: cancel {ids[1]}: invalid-transition: ")
    assert errors[1] == "gateway: cancel 999999: request-not-found: no access request 999999"
    assert errors[2] == f"gateway: cancel: 2 of 4 failed: {ids[1]}, 999999"
    for request_id in (ids[0], ids[2]):
        stored = await client.gw.get(f"/v1/resource-access-requests/{request_id}")
        assert stored["state"] == "CANCELLED"
    more = await _some_requests(client.gw, 2)
    both = await client.run("accessrequest", "approve", *more, "--json", user="approver")
    assert both.code == 0
    assert [json.loads(line)["id"] for line in both.out.splitlines()] == more


# --- deliveries ---------------------------------------------------------------------------

async def test_delivery_ls_get_and_redeliver(hooked: Client) -> None:
    gw = hooked.gw
    webhook_request = (await gw.create(ORDERS))["id"]
    mail_request = (await gw.create(PROFILE))["id"]
    failed = await _settled(gw, webhook_request, 1)
    await _settled(gw, mail_request, 1)
    listed = await hooked.run("delivery", "ls", "--json", user="admin")
    assert listed.json() == await gw.get("/v1/deliveries?limit=50", user="admin")
    only_failed = await hooked.run("delivery", "ls", "--state", "failed", "--since",
                                   "2020-01-01T00:00:00Z", "--json", user="admin")
    assert only_failed.json()["items"] == failed
    people = await hooked.run("delivery", "ls", "--channel", "email", user="admin")
    assert people.code == 0, people.err
    assert people.out.splitlines()[0].split()[:3] == ["ID", "REQUEST", "EVENT"]
    assert "delivered" in people.out and "tickets@acme.com" in people.out
    one = await hooked.run("delivery", "get", failed[0]["id"], "--json", user="admin")
    assert one.json() == await gw.get(f"/v1/deliveries/{failed[0]['id']}", user="admin")

    again = await hooked.run("delivery", "redeliver", failed[0]["id"], "no-such-delivery",
                             user="admin")
    assert again.code == 1
    new_id = again.out.split()[0]
    assert again.out.startswith(f"{new_id}  queued  redelivery of {failed[0]['id']}")
    assert "gateway: redeliver no-such-delivery: delivery-not-found: no such delivery" \
        in again.err
    record = await gw.get(f"/v1/deliveries/{new_id}", user="admin")
    assert record["redeliveryOf"] == failed[0]["id"]
    refused = await hooked.run("delivery", "ls")  # the requester is no admin
    assert refused.code == 1 and "gateway: ls: forbidden: " in refused.err


async def test_delivery_redeliver_by_filter(hooked: Client) -> None:
    gw = hooked.gw
    failed = await _settled(gw, (await gw.create(ORDERS))["id"], 1)
    both = await hooked.run("delivery", "redeliver", "x", "--state", "failed", user="admin")
    assert both.code == 2 and "not both" in both.err
    again = await hooked.run("delivery", "redeliver", "--state", "failed", "--channel",
                             "webhook", "--json", user="admin")
    assert again.code == 0, again.err
    (new_id,) = again.json()["ids"]
    record = await gw.get(f"/v1/deliveries/{new_id}", user="admin")
    assert record["redeliveryOf"] == failed[0]["id"]
    refused = await hooked.run("delivery", "redeliver", "--state", "failed")
    assert refused.code == 1 and "forbidden" in refused.err
    shown = await hooked.run("delivery", "get", failed[0]["id"], user="admin")
    assert re.search(r"reached: +answered \(dns \d+ ms, connect \d+ ms, sent \d+ ms, "
                     r"answered \d+ ms\)\n", shown.out), shown.out
    assert re.search(r"address: +127\.0\.0\.1:\d+\n", shown.out), shown.out


async def test_delivery_get_shows_how_to_verify_it(hooked: Client) -> None:
    """The record's timestamp and signature, and the command that checks them: run as shown
    (with the secret in the variable it names), it says `valid`."""
    gw = hooked.gw
    [record] = await _settled(gw, (await gw.create(ORDERS))["id"], 1)
    shown = await hooked.run("delivery", "get", record["id"], user="admin")
    assert shown.code == 0, shown.err
    assert re.search(r"^X-TIMESTAMP: \d+$", shown.out, re.M), shown.out
    assert re.search(r"^X-HUB-SIGNATURE-256: [0-9a-f]{64}$", shown.out, re.M), shown.out
    assert HOOK_SECRET not in shown.out
    hint = re.search(r"^verify: +(gateway delivery get (\S+) --body) \| (gateway verify .*)$",
                     shown.out, re.M)
    assert hint and hint[2] == record["id"], shown.out
    body = await hooked.run(*hint[1].split()[1:], user="admin")
    assert body.code == 0, body.err
    detail = await gw.get(f"/v1/deliveries/{record['id']}", user="admin")
    assert body.out == detail["request"]["body"]  # byte for byte: no newline added
    checked = subprocess.run([sys.executable, "-m", *hint[3].split()],
                             input=body.out.encode(), capture_output=True, timeout=60,
                             env={**os.environ, "WEBHOOK_SECRET": HOOK_SECRET})
    assert (checked.returncode, checked.stdout) == (0, b"valid\n"), checked
    both = await hooked.run("delivery", "get", record["id"], "--body", "--json", user="admin")
    assert both.code == 2 and "not with --json" in both.err


def test_redeliver_by_filter_on_a_gateway_without_the_endpoint() -> None:
    from gateway.client.commands import Context, redeliver
    from gateway.client.http import ApiError

    calls: list[tuple[str, str]] = []

    class OlderGateway:
        def call(self, method: str, path: str, **_: Any) -> Any:
            calls.append((method, path))
            if path == "/v1/deliveries/redeliver":
                raise ApiError(405, "method-not-allowed", "no such method")
            if method == "GET":
                return {"items": [{"id": "a", "state": "failed"},
                                  {"id": "b", "state": "queued"}], "nextCursor": None}
            return {"id": "new-" + path.split("/")[3]}

    out, err = io.StringIO(), io.StringIO()
    ctx = Context(OlderGateway(), json=True, out=out, err=err)  # type: ignore[arg-type]
    args = argparse.Namespace(ids=[], filters=[("state", "failed")], leaf=None)
    assert redeliver(ctx, args) == 0
    assert json.loads(out.getvalue()) == {"ids": ["new-a"]}
    assert calls[-1] == ("POST", "/v1/deliveries/a/redeliver")


# --- failures without an answer, tokens, usage ------------------------------------------

async def test_no_server_is_one_line_and_exit_2(client: Client) -> None:
    closed = unused_port()
    for args in (["accessrequest", "ls"], ["accessrequest", "cancel", "1", "2"],
                 ["delivery", "redeliver", "x"]):
        result = await client.run(*args, "--url", f"http://127.0.0.1:{closed}")
        assert (result.code, result.out) == (2, "")
        assert result.err == (f"gateway: cannot reach http://127.0.0.1:{closed}: "
                              f"connection refused\n")


async def test_missing_token_is_one_line_and_exit_2(client: Client) -> None:
    result = await client.run("accessrequest", "ls", user=None)
    assert (result.code, result.out) == (2, "")
    assert result.err == ("gateway: no token: set the environment variable GATEWAY_TOKEN "
                          "(or name another one with --token-env)\n")
    other = await client.run("accessrequest", "ls", "--token-env", "MY_TOKEN",
                             MY_TOKEN=TOKENS["approver"], user=None)
    assert other.code == 0, other.err
    wrong = await client.run("accessrequest", "ls", GATEWAY_TOKEN="not-a-valid-token-at-all",
                             user=None)
    assert wrong.code == 1 and wrong.err.startswith("gateway: ls: unauthorized: ")


async def test_the_token_is_in_no_argv_and_no_output(client: Client) -> None:
    """A server that accepts and never answers keeps the client alive long enough to read
    every process's command line while it waits; the token is in its environment only."""
    asked = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")  # the client's request: it now waits
        asked.set()
        await asyncio.sleep(30)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    env = client_env(f"http://127.0.0.1:{port}", "admin")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "accessrequest", "approve", "1", "2", "--remarks",
        "ok", "--timeout", "20", env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        await asyncio.wait_for(asked.wait(), 30)
        environ = open(f"/proc/{proc.pid}/environ", "rb").read()  # noqa: SIM115
        assert TOKENS["admin"].encode() in environ  # the test reads the right process
        # The client and whatever it started (other programs on a shared machine, such as
        # the fuzz test's schemathesis, may well carry a test token on their command line).
        family, seen = [str(proc.pid)], 0
        while seen < len(family):
            pid = family[seen]
            seen += 1
            for task in os.listdir(f"/proc/{pid}/task"):
                with contextlib.suppress(OSError), \
                        open(f"/proc/{pid}/task/{task}/children") as f:
                    family += f.read().split()
        for pid in family:
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    argv = f.read()
            except OSError:
                continue
            assert TOKENS["admin"].encode() not in argv, f"token in the argv of {pid}"
    finally:
        proc.kill()
        out, err = await proc.communicate()
        server.close()
    assert_no_token(out.decode(), err.decode())
    # and in all the outputs of a full round: creation, listing, refusals, JSON
    request_id = (await client.gw.create(ORDERS))["id"]
    for user, args in [("requester", ["accessrequest", "ls"]),
                       ("requester", ["accessrequest", "get", request_id, "--json"]),
                       ("approver", ["accessrequest", "approve", request_id, "9"]),
                       ("other", ["accessrequest", "get", request_id])]:
        await client.run(*args, user=user)  # run() asserts no token in stdout or stderr


async def test_bad_usage_is_exit_2(client: Client) -> None:
    for args in (["accessrequest", "approve"], ["accessrequest", "get", "1", "--bogus", "x"],
                 ["accessrequest", "frobnicate"], ["user", "request-access", "x"],
                 ["accessrequest", "approve", "1", "--duration", "PT1H", "--expiration",
                  "2030-01-01T00:00:00Z"], ["accessrequest", "ls", "--limit", "0"],
                 ["accessrequest", "approve", "1", "--duration", "2 fortnights"]):
        result = await client.run(*args)
        assert (result.code, result.out) == (2, ""), args
        assert "usage: gateway" in result.err


# --- people's comforts: colour, completion, a light start ---------------------------------

async def _on_a_terminal(client: Client, *args: str, **env: str) -> str:
    leader, follower = pty.openpty()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", *args, env=client_env(client.url, "requester", **env),
        stdin=subprocess.DEVNULL, stdout=follower, stderr=subprocess.PIPE)
    os.close(follower)
    reading = asyncio.create_task(asyncio.to_thread(_read_all, leader))
    await proc.wait()
    output = await reading
    os.close(leader)
    return output


def _read_all(fd: int) -> str:
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the other end is closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode()


async def test_colour_only_on_a_terminal_and_never_with_no_color(client: Client) -> None:
    await _some_requests(client.gw, 1)
    coloured = await _on_a_terminal(client, "accessrequest", "ls")
    assert "\x1b[33mPENDING\x1b[0m" in coloured
    assert ANSI.sub("", coloured).split()[:2] == ["ID", "STATE"]
    plain = await _on_a_terminal(client, "accessrequest", "ls", NO_COLOR="1")
    assert "PENDING" in plain and not ANSI.search(plain)
    piped = await client.run("accessrequest", "ls")
    assert "PENDING" in piped.out and not ANSI.search(piped.out)


async def test_bash_completion_completes_verbs_options_and_choices(client: Client) -> None:
    script = await client.run("completion", "bash", user=None)
    assert script.code == 0
    probe = script.out + """
t() { COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _gateway; echo "${COMPREPLY[*]}"; }
t gateway ""
t gateway accessrequest ""
t gateway accessrequest ls --sta
t gateway accessrequest fulfill 1 --status ""
t gateway delivery re
"""
    done = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, check=True)
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["serve", "check-config", "migrate", "verify", "demo", "user",
                                "team", "role", "accessrequest", "delivery", "token",
                                "completion"]
    assert lines[1].split() == ["ls", "get", "set", "cancel", "approve", "reject", "activity",
                                "deliveries", "fulfill"]
    assert lines[2:] == ["--state", "granted error", "redeliver"]


async def test_zsh_completion_is_generated(client: Client) -> None:
    script = await client.run("completion", "zsh", user=None)
    assert script.code == 0
    assert script.out.startswith("#compdef gateway\n")
    assert "'approve:approve pending request(s)'" in script.out
    assert '("/accessrequest/fulfill --status") compadd -- granted error' in script.out
    if shutil.which("zsh"):
        subprocess.run(["zsh", "-n", "-c", script.out], check=True)


async def test_the_client_path_imports_no_server_module(client: Client) -> None:
    await client.gw.create(ORDERS)
    env = client_env(client.url, "requester")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-X", "importtime", "-m", "gateway", "accessrequest", "ls", env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode == 0 and out.decode().startswith("ID  STATE")
    imported = {line.split("|")[-1].strip() for line in err.decode().splitlines()
                if line.startswith("import time:")}
    assert "gateway.client.http" in imported  # the list is the client's whole run
    for module in SERVER_MODULES:
        assert not any(m == module or m.startswith(module + ".") for m in imported), module
    # gateway.client itself, without gateway/cli.py's own imports: no sqlite3, no asyncio
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "import sys; from gateway.client.main import main; code = main("
        "['accessrequest', 'ls', '--json']); import json; "
        "print(json.dumps(sorted(sys.modules)), file=sys.stderr); "
        "sys.exit(code)", env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode == 0 and json.loads(out)["items"]
    modules = set(json.loads(err))
    assert "http.client" in modules
    assert not modules & {"sqlite3", "asyncio", *SERVER_MODULES}
