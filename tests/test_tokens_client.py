"""`gateway token create|ls|revoke` (SPEC §14): the real `gateway` program as a process,
against a real gateway on the test's store (tests/test_client.py's `Client`)."""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.conftest import Gateway
from tests.test_client import Client

PAT = re.compile(r"gwpat_[A-Za-z0-9_-]{43}")


@pytest.fixture
async def client(gw: Gateway) -> Client:
    return Client(gw)


async def test_create_use_list_and_revoke(client: Client) -> None:
    made = await client.run("token", "create", "laptop", "--expires-in", "P7D")
    assert made.code == 0, made.err
    token = made.out.strip()
    assert PAT.fullmatch(token) and made.out == token + "\n"  # alone: $(gateway token create)
    assert "laptop (johndoe@acme.com)  expires in 6d 23h" in made.err
    assert "not shown again" in made.err and token not in made.err

    # The new token works for the client itself.
    listed = await client.run("token", "ls", "--json", GATEWAY_TOKEN=token, user=None)
    assert listed.code == 0, listed.err
    items = listed.json()["items"]
    assert [t["name"] for t in items] == ["laptop"] and token not in listed.out
    table = await client.run("token", "ls")
    assert table.out.split()[:6] == ["ID", "NAME", "EMAIL", "CREATED", "EXPIRES", "LAST"]
    assert items[0]["id"] in table.out and token not in table.out
    assert table.err == "1 token\n"

    # A token does not make tokens.
    child = await client.run("token", "create", "child", GATEWAY_TOKEN=token, user=None)
    assert child.code == 1 and "token-cannot-create-tokens" in child.err

    revoked = await client.run("token", "revoke", items[0]["id"], "nope")
    assert revoked.code == 1
    assert revoked.out.startswith(f"revoked {items[0]['id']}  laptop (johndoe@acme.com)")
    assert "gateway: revoke nope: token-not-found: no such token" in revoked.err
    gone = await client.run("token", "ls", GATEWAY_TOKEN=token, user=None)
    assert gone.code == 1 and "unauthorized" in gone.err


async def test_json_create_and_admin_listing(client: Client) -> None:
    made = await client.run("token", "create", "ci", "--json")
    assert made.code == 0, made.err
    document = made.json()
    assert PAT.fullmatch(document["token"]) and document["name"] == "ci"
    bad = await client.run("token", "create", "x", "--expires-in", "P2Y")
    assert bad.code == 1 and "expiresIn" in bad.err
    mine = await client.run("token", "ls", "--json", "--email", "johndoe@acme.com",
                            user="admin")
    assert [t["id"] for t in mine.json()["items"]] == [document["id"]]
    none = await client.run("token", "ls", "--email", "olive@acme.com", user="admin")
    assert none.code == 0 and none.out == "" and none.err == "0 tokens\n"
    refused = await client.run("token", "ls", "--email", "olive@acme.com")
    assert refused.code == 1 and "forbidden" in refused.err


async def test_token_verbs_complete(client: Client) -> None:
    script = await client.run("completion", "bash", user=None)
    probe = script.out + """
t() { COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _gateway; echo "${COMPREPLY[*]}"; }
t gateway token ""
t gateway token create --exp
"""
    done = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines() == ["create ls revoke", "--expires-in"]
