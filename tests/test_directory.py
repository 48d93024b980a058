"""The directory's store layer and its facade (SPEC §14), on the test's backend: people and
teams, case-insensitive addresses, filters and pages, the configuration's bootstrap set, and
the version that keeps cached people exact."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from gateway.api.keys import DATABASE, DIRECTORY
from gateway.directory import Person, Team, normalise_email
from gateway.errors import Conflict
from gateway.store import directory as store
from tests.conftest import EMAILS, TOKENS, Gateway


def _db(gw: Gateway) -> Any:
    return gw.app[DATABASE]


async def test_configured_users_are_people_of_source_config(gw: Gateway) -> None:
    people = await gw.app[DIRECTORY].find(source="config", limit=50)
    assert sorted(p.email for p in people) == sorted(EMAILS.values())
    requester = await gw.app[DIRECTORY].person(EMAILS["requester"].upper())
    assert requester is not None
    assert requester.teams == ("analytics",) and requester.roles == ("analyst",)
    assert requester.active and requester.source == "config" and not requester.admin
    admin = await gw.app[DIRECTORY].person(EMAILS["admin"])
    assert admin is not None and admin.admin


async def test_save_get_and_case_insensitive_addresses(gw: Gateway) -> None:
    db = _db(gw)
    saved = await db.write(store.save_person, Person(
        email="Ada.Lovelace@Example.COM", display_name="Ada", teams=("b-team", "a-team"),
        roles=("analyst",), manager="Boss@Example.com", scim_id="s-1", external_id="x-1"))
    assert saved.email == "ada.lovelace@example.com"
    assert saved.teams == ("a-team", "b-team") and saved.manager == "boss@example.com"
    assert saved.created_at and saved.updated_at
    for email in ("ada.lovelace@example.com", "ADA.LOVELACE@EXAMPLE.COM",
                  " Ada.Lovelace@example.com "):
        found = await db.read(store.get_person, email)
        assert found == saved
    assert await db.read(store.get_person_by_scim_id, "s-1") == saved
    assert await db.read(store.get_person_by_scim_id, "S-1") is None  # SCIM ids are exact
    again = await db.write(store.save_person, dataclasses.replace(saved, teams=("c-team",),
                                                                  display_name="Ada L."))
    assert again.created_at == saved.created_at and again.teams == ("c-team",)
    team = await db.read(store.get_team, "a-team")
    assert team is not None and team.members == ()
    assert await db.write(store.delete_person, "ADA.lovelace@example.com") is True
    assert await db.read(store.get_person, saved.email) is None
    assert await db.write(store.delete_person, saved.email) is False
    team = await db.read(store.get_team, "c-team")
    assert team is not None and team.members == ()


async def test_find_people_filters_and_pages(gw: Gateway) -> None:
    db = _db(gw)
    for i in range(7):
        await db.write(store.save_person, Person(
            email=f"p{i}@corp.example", active=i % 2 == 0, teams=("even",) if i % 2 == 0
            else ("odd",), source="scim" if i < 3 else "api", external_id=f"ext-{i}"))
    emails: list[str] = []
    after = None
    while True:
        page = await db.read(store.find_people, source="api", limit=2, after=after)
        emails += [p.email for p in page]
        if len(page) < 2:
            break
        after = page[-1].email
    assert emails == [f"p{i}@corp.example" for i in range(3, 7)]
    even = await db.read(store.find_people, team="even", limit=50)
    assert [p.email for p in even] == [f"p{i}@corp.example" for i in (0, 2, 4, 6)]
    inactive = await db.read(store.find_people, active=False, source="scim", limit=50)
    assert [p.email for p in inactive] == ["p1@corp.example"]
    by_ext = await db.read(store.find_people, external_id="ext-5", limit=50)
    assert [p.email for p in by_ext] == ["p5@corp.example"]
    one = await db.read(store.find_people, email="P4@CORP.example", limit=50)
    assert [p.email for p in one] == ["p4@corp.example"]


async def test_teams_and_memberships(gw: Gateway) -> None:
    db = _db(gw)
    await db.write(store.save_person, Person(email="m1@corp.example"))
    await db.write(store.save_person, Person(email="m2@corp.example", active=False))
    team = await db.write(store.save_team, Team(name="Stewards", scim_id="g-1",
                                                external_id="grp", members=("M1@corp.example",)))
    assert team.members == ("m1@corp.example",)
    await db.write(store.add_members, "Stewards", ["m2@corp.example", "m1@corp.example"])
    found = await db.read(store.get_team_by_scim_id, "g-1")
    assert found is not None and found.members == ("m1@corp.example", "m2@corp.example")
    assert await db.read(store.get_team, "stewards") is None  # team names are exact
    assert await db.read(store.active_members, "Stewards") == ["m1@corp.example"]
    person = await db.read(store.get_person, "m2@corp.example")
    assert person is not None and person.teams == ("Stewards",)
    teams = await db.read(store.find_teams, member="m2@corp.example", limit=10)
    assert [t.name for t in teams] == ["Stewards"]
    await db.write(store.remove_members, "Stewards", ["m1@CORP.example"])
    found = await db.read(store.get_team, "Stewards")
    assert found is not None and found.members == ("m2@corp.example",)
    await db.write(store.set_members, "Stewards", ["m1@corp.example"])
    found = await db.read(store.get_team, "Stewards")
    assert found is not None and found.members == ("m1@corp.example",)
    await db.write(store.rename_team, "Stewards", "Data stewards")
    person = await db.read(store.get_person, "m1@corp.example")
    assert person is not None and person.teams == ("Data stewards",)
    assert await db.write(store.delete_team, "Data stewards") is True
    person = await db.read(store.get_person, "m1@corp.example")
    assert person is not None and person.teams == ()


async def test_every_change_moves_the_version(gw: Gateway) -> None:
    db = _db(gw)
    versions = [await db.read(store.directory_version)]
    for change in (
        lambda: db.write(store.save_person, Person(email="v@corp.example")),
        lambda: db.write(store.add_members, "t", ["v@corp.example"]),
        lambda: db.write(store.remove_members, "t", ["v@corp.example"]),
        lambda: db.write(store.set_members, "t", ["v@corp.example"]),
        lambda: db.write(store.save_team, Team(name="u")),
        lambda: db.write(store.delete_team, "u"),
        lambda: db.write(store.delete_person, "v@corp.example"),
    ):
        await change()
        versions.append(await db.read(store.directory_version))
    assert versions == sorted(set(versions)), versions


async def test_the_cache_follows_a_change_made_behind_its_back(gw: Gateway, peek: Any) -> None:
    """A change written by another process (here: a plain connection) is seen at the next
    lookup, because it moved the version; a lookup of an unchanged directory is cached."""
    directory = gw.app[DIRECTORY]
    before = await directory.person(EMAILS["other"])
    assert before is not None and before.active
    conn = peek()
    conn.execute("UPDATE people SET active = 0 WHERE email = ?", (EMAILS["other"],))
    conn.execute("UPDATE gateway_directory_version SET version = version + 1")
    after = await directory.person(EMAILS["other"])
    assert after is not None and not after.active
    status, body = await gw.call("GET", "/v1/resource-access-requests", user="other")
    assert status == 401, body


async def test_config_people_are_not_changed_by_the_api_source(gw: Gateway) -> None:
    directory = gw.app[DIRECTORY]
    person = await directory.person(EMAILS["owner"])
    assert person is not None
    with pytest.raises(Conflict) as caught:
        await directory.save(dataclasses.replace(person, admin=True, source="api"),
                             actor=EMAILS["admin"])
    assert caught.value.code == "managed-by-config"
    with pytest.raises(Conflict):
        await directory.delete(EMAILS["owner"], actor=EMAILS["admin"], by="scim")
    with pytest.raises(Conflict) as caught:
        await directory.create(Person(email=EMAILS["owner"].upper()), actor=EMAILS["admin"])
    assert caught.value.code == "user-exists"


async def test_a_user_dropped_from_the_configuration_is_deprovisioned_at_start(
        start_gateway: Any) -> None:
    first = await start_gateway()
    status, _ = await first.call("GET", "/v1/resource-access-requests", user="other")
    assert status == 200
    await first.client.close()
    from tests.conftest import raw_config  # the same users, but one
    users = [u for u in raw_config({"path": "x"})["users"] if u["email"] != EMAILS["other"]]
    second = await start_gateway(users=users)
    person = await second.app[DIRECTORY].person(EMAILS["other"])
    assert person is not None and not person.active and person.source == "api"
    status, _ = await second.call("GET", "/v1/resource-access-requests", user="other")
    assert status == 401
    assert TOKENS["other"]  # its token is simply unknown now


def test_normalise_email() -> None:
    assert normalise_email("  Jane.Smith@ACME.com ") == "jane.smith@acme.com"


class _Recorder:
    """The test's connection, remembering the statements the store's operations send."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.sent: list[tuple[str, tuple[Any, ...]]] = []

    def execute(self, sql: str, params: Any = ()) -> Any:
        self.sent.append((sql, tuple(params)))
        return self.conn.execute(sql, params)


async def test_the_directory_reads_use_their_indexes(
        gw: Gateway, backend: str, peek: Any) -> None:
    """Every directory read made while a request is created or approved (recipients from a
    team, the manager, the admins, who is active), and the listings by team or member, is
    planned on an index, so that its cost does not grow with the number of people: no scan
    of people, teams or memberships, and the active admins found by both their columns, not
    by walking every active person."""
    conn = _Recorder(peek())
    store.find_people(conn, team="analytics")
    store.find_teams(conn, member=EMAILS["requester"])
    store.active_members(conn, "analytics")
    store.manager_of(conn, EMAILS["requester"])
    store.active_admins(conn)
    store.active_people(conn, [EMAILS["approver"], EMAILS["other"]])
    store.inactive_people(conn, [EMAILS["approver"], EMAILS["other"]])
    store.person_if_changed(conn, EMAILS["requester"], None)
    on_sqlite = backend == "sqlite"
    if not on_sqlite:
        # Tiny tables, where a scan is cheaper: ask whether an index can serve instead.
        conn.conn.execute("SET enable_seqscan = off")
    checked = 0
    for sql, params in conn.sent:
        if not sql.startswith("SELECT") or "gateway_directory_version" in sql:
            continue  # one row, read as a whole
        checked += 1
        if on_sqlite:
            plan = " ".join(r[3] for r in conn.conn.execute(f"EXPLAIN QUERY PLAN {sql}", params))
            assert "SCAN" not in plan and "TEMP B-TREE" not in plan, (sql, plan)
        else:
            plan = " ".join(r[0] for r in conn.conn.execute(f"EXPLAIN {sql}", params))
            # (A sort of one person's few rows may be planned here: nothing grows with it.)
            assert "Seq Scan" not in plan, (sql, plan)
        if "admin = 1" in sql:
            assert ("admin=?" in plan) if on_sqlite else ("(admin = 1)" in plan
                                                          and "Filter" not in plan), plan
    assert checked >= 10, conn.sent
