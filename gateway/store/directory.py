"""SQL for the directory (SPEC §14): people, teams and memberships, on both backends.

Connection-level operations, run inside `Database.write` / `Database.read`. Every change
bumps the directory's version (`directory_changed`) in its own transaction: an instance that
caches people (gateway.directory.service) reads the version first and drops its cache when
another instance changed something, so the next request anywhere sees the change.

E-mail addresses are stored lower-cased (`normalise_email`); lookups normalise what they
are given. A person's teams are their rows in `team_members`; a team named in a membership
is created on the way, so that a person's `teams` always name existing teams.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from gateway.directory.people import Person, Team, normalise_email
from gateway.store.codec import dump, load
from gateway.timeutil import now_text

_PERSON = ("email, display_name, active, admin, integration, roles, manager, source, "
           "scim_id, external_id, created_at, updated_at")
_TEAM = "name, scim_id, external_id"


def directory_changed(conn: Any) -> None:
    """Something in the directory changes in this transaction (see the module's note)."""
    conn.execute("UPDATE gateway_directory_version SET version = version + 1")


def directory_version(conn: Any) -> int:
    return int(conn.execute("SELECT version FROM gateway_directory_version").fetchone()[0])


# --- people ------------------------------------------------------------------------------


def _grouped(conn: Any, by: str, other: str, keys: list[str]) -> dict[str, tuple[str, ...]]:
    """Memberships of `keys`, grouped by `by` (`email` -> its teams, `team` -> its members),
    in one query."""
    if not keys:
        return {}
    marks = ", ".join("?" for _ in keys)
    rows = conn.execute(
        f"SELECT {by}, {other} FROM team_members WHERE {by} IN ({marks}) ORDER BY {by}, {other}",
        keys,
    ).fetchall()
    grouped: dict[str, list[str]] = {}
    for key, value in rows:
        grouped.setdefault(key, []).append(value)
    return {key: tuple(values) for key, values in grouped.items()}


def _teams_of(conn: Any, emails: list[str]) -> dict[str, tuple[str, ...]]:
    return _grouped(conn, "email", "team", emails)


def _people(conn: Any, rows: list[Any]) -> list[Person]:
    teams = _teams_of(conn, [r[0] for r in rows])
    return [
        Person(email=r[0], display_name=r[1], active=bool(r[2]), admin=bool(r[3]),
               integration=bool(r[4]), roles=tuple(load(r[5]) or ()), manager=r[6],
               source=r[7], scim_id=r[8], external_id=r[9], created_at=r[10],
               updated_at=r[11], teams=teams.get(r[0], ()))
        for r in rows
    ]


def get_person(conn: Any, email: str) -> Person | None:
    rows = conn.execute(f"SELECT {_PERSON} FROM people WHERE email = ?",
                        (normalise_email(email),)).fetchall()
    found = _people(conn, rows)
    return found[0] if found else None


def get_person_by_scim_id(conn: Any, scim_id: str) -> Person | None:
    rows = conn.execute(f"SELECT {_PERSON} FROM people WHERE scim_id = ?", (scim_id,)
                        ).fetchall()
    found = _people(conn, rows)
    return found[0] if found else None


def person_if_changed(conn: Any, email: str, known_version: int | None
                      ) -> tuple[int, bool, Person | None]:
    """(version, changed, person): the person is read only when the version is not
    `known_version` (one round trip for a request whose caller is cached)."""
    version = directory_version(conn)
    if version == known_version:
        return version, False, None
    return version, True, get_person(conn, email)


def find_people(conn: Any, *, email: str | None = None, team: str | None = None,
                active: bool | None = None, source: str | None = None,
                external_id: str | None = None, display_name: str | None = None,
                limit: int = 50, after: str | None = None) -> list[Person]:
    """People matching every filter given, ordered by e-mail; `after` is the last e-mail
    of the previous page (ask for limit + 1 to know whether another page follows)."""
    where, params = [], []
    if email is not None:
        where.append("p.email = ?")
        params.append(normalise_email(email))
    if team is not None:
        # IN, not a correlated EXISTS: SQLite then reads the team's members (in e-mail order)
        # instead of testing every person in turn, 50,000 of them in a large directory.
        where.append("p.email IN (SELECT m.email FROM team_members m WHERE m.team = ?)")
        params.append(team)
    if active is not None:
        where.append("p.active = ?")
        params.append(int(active))
    if source is not None:
        where.append("p.source = ?")
        params.append(source)
    if external_id is not None:
        where.append("p.external_id = ?")
        params.append(external_id)
    if display_name is not None:
        where.append("p.display_name = ?")
        params.append(display_name)
    if after is not None:
        where.append("p.email > ?")
        params.append(after)
    clause = f"WHERE {' AND '.join(where)} " if where else ""
    columns = ", ".join(f"p.{c.strip()}" for c in _PERSON.split(","))
    rows = conn.execute(f"SELECT {columns} FROM people p {clause}ORDER BY p.email LIMIT ?",
                        (*params, limit)).fetchall()
    return _people(conn, rows)


def save_person(conn: Any, person: Person) -> Person:
    """Insert or update `person` (by e-mail), its memberships replaced by `person.teams`;
    the stored record is returned (created_at kept from the first save)."""
    now = now_text()
    email = normalise_email(person.email)
    manager = normalise_email(person.manager) if person.manager else None
    conn.execute(
        f"INSERT INTO people ({_PERSON}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (email) DO UPDATE SET display_name = excluded.display_name, "
        "active = excluded.active, admin = excluded.admin, "
        "integration = excluded.integration, roles = excluded.roles, "
        "manager = excluded.manager, source = excluded.source, scim_id = excluded.scim_id, "
        "external_id = excluded.external_id, updated_at = excluded.updated_at",
        (email, person.display_name, int(person.active), int(person.admin),
         int(person.integration), dump(list(person.roles)), manager, person.source,
         person.scim_id, person.external_id, now, now),
    )
    teams = sorted(set(person.teams))
    conn.execute("DELETE FROM team_members WHERE email = ?", (email,))
    for team in teams:
        _ensure_team(conn, team, now)
        conn.execute("INSERT INTO team_members (team, email) VALUES (?, ?)", (team, email))
    directory_changed(conn)
    saved = get_person(conn, email)
    assert saved is not None
    return saved


def set_active(conn: Any, email: str, active: bool) -> Person | None:
    found = get_person(conn, email)
    if found is None:
        return None
    return save_person(conn, dataclasses.replace(found, active=active))


def delete_person(conn: Any, email: str) -> bool:
    """Remove a person and their memberships; False when there was nobody to remove."""
    email = normalise_email(email)
    conn.execute("DELETE FROM team_members WHERE email = ?", (email,))
    gone = conn.execute("DELETE FROM people WHERE email = ?", (email,)).rowcount
    directory_changed(conn)
    return bool(gone)


def is_active(conn: Any, email: str) -> bool:
    row = conn.execute("SELECT active FROM people WHERE email = ?",
                       (normalise_email(email),)).fetchone()
    return row is not None and bool(row[0])


def active_people(conn: Any, emails: Iterable[str]) -> set[str]:
    """Which of `emails` (normalised) are active people."""
    wanted = sorted({normalise_email(e) for e in emails})
    if not wanted:
        return set()
    marks = ", ".join("?" for _ in wanted)
    rows = conn.execute(f"SELECT email FROM people WHERE active = 1 AND email IN ({marks})",
                        wanted).fetchall()
    return {r[0] for r in rows}


def inactive_people(conn: Any, emails: Iterable[str]) -> set[str]:
    """Which of `emails` are people of the directory who are not active."""
    wanted = sorted({normalise_email(e) for e in emails})
    if not wanted:
        return set()
    marks = ", ".join("?" for _ in wanted)
    rows = conn.execute(f"SELECT email FROM people WHERE active = 0 AND email IN ({marks})",
                        wanted).fetchall()
    return {r[0] for r in rows}


def active_admins(conn: Any) -> list[str]:
    rows = conn.execute("SELECT email FROM people WHERE active = 1 AND admin = 1 "
                        "ORDER BY email").fetchall()
    return [r[0] for r in rows]


def manager_of(conn: Any, email: str) -> str | None:
    row = conn.execute("SELECT manager FROM people WHERE email = ?",
                       (normalise_email(email),)).fetchone()
    return None if row is None else row[0]


# --- teams -------------------------------------------------------------------------------


def _ensure_team(conn: Any, name: str, now: str) -> None:
    conn.execute("INSERT INTO teams (name, created_at, updated_at) VALUES (?, ?, ?) "
                 "ON CONFLICT (name) DO NOTHING", (name, now, now))


def _members(conn: Any, names: list[str]) -> dict[str, tuple[str, ...]]:
    return _grouped(conn, "team", "email", names)


def _teams(conn: Any, rows: list[Any]) -> list[Team]:
    members = _members(conn, [r[0] for r in rows])
    return [Team(name=r[0], scim_id=r[1], external_id=r[2], members=members.get(r[0], ()))
            for r in rows]


def get_team(conn: Any, name: str) -> Team | None:
    found = _teams(conn, conn.execute(f"SELECT {_TEAM} FROM teams WHERE name = ?", (name,)
                                      ).fetchall())
    return found[0] if found else None


def get_team_by_scim_id(conn: Any, scim_id: str) -> Team | None:
    found = _teams(conn, conn.execute(f"SELECT {_TEAM} FROM teams WHERE scim_id = ?",
                                      (scim_id,)).fetchall())
    return found[0] if found else None


def find_teams(conn: Any, *, name: str | None = None, external_id: str | None = None,
               member: str | None = None, limit: int = 50,
               after: str | None = None) -> list[Team]:
    """Teams matching every filter given, ordered by name; `after` as in `find_people`."""
    where, params = [], []
    if name is not None:
        where.append("t.name = ?")
        params.append(name)
    if external_id is not None:
        where.append("t.external_id = ?")
        params.append(external_id)
    if member is not None:
        where.append("t.name IN (SELECT m.team FROM team_members m WHERE m.email = ?)")
        params.append(normalise_email(member))  # IN: as for find_people's team
    if after is not None:
        where.append("t.name > ?")
        params.append(after)
    clause = f"WHERE {' AND '.join(where)} " if where else ""
    rows = conn.execute(
        f"SELECT t.name, t.scim_id, t.external_id FROM teams t {clause}ORDER BY t.name LIMIT ?",
        (*params, limit),
    ).fetchall()
    return _teams(conn, rows)


def save_team(conn: Any, team: Team) -> Team:
    """Insert or update `team` (by name), its members replaced by `team.members`."""
    now = now_text()
    conn.execute(
        "INSERT INTO teams (name, scim_id, external_id, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET scim_id = excluded.scim_id, "
        "external_id = excluded.external_id, updated_at = excluded.updated_at",
        (team.name, team.scim_id, team.external_id, now, now),
    )
    set_members(conn, team.name, team.members)
    saved = get_team(conn, team.name)
    assert saved is not None
    return saved


def rename_team(conn: Any, old: str, new: str) -> None:
    """A team's new name (SCIM renames groups): its memberships follow."""
    conn.execute("UPDATE teams SET name = ?, updated_at = ? WHERE name = ?",
                 (new, now_text(), old))
    conn.execute("UPDATE team_members SET team = ? WHERE team = ?", (new, old))
    directory_changed(conn)


def delete_team(conn: Any, name: str) -> bool:
    conn.execute("DELETE FROM team_members WHERE team = ?", (name,))
    gone = conn.execute("DELETE FROM teams WHERE name = ?", (name,)).rowcount
    directory_changed(conn)
    return bool(gone)


def set_members(conn: Any, team: str, emails: Iterable[str]) -> None:
    _ensure_team(conn, team, now_text())
    conn.execute("DELETE FROM team_members WHERE team = ?", (team,))
    add_members(conn, team, emails)


def add_members(conn: Any, team: str, emails: Iterable[str]) -> None:
    _ensure_team(conn, team, now_text())
    for email in sorted({normalise_email(e) for e in emails}):
        conn.execute("INSERT INTO team_members (team, email) VALUES (?, ?) "
                     "ON CONFLICT (team, email) DO NOTHING", (team, email))
    directory_changed(conn)


def remove_members(conn: Any, team: str, emails: Iterable[str]) -> None:
    for email in sorted({normalise_email(e) for e in emails}):
        conn.execute("DELETE FROM team_members WHERE team = ? AND email = ?", (team, email))
    directory_changed(conn)


def active_members(conn: Any, team: str) -> list[str]:
    """The team's members who are active people (those a team responsibility reaches)."""
    rows = conn.execute(
        "SELECT m.email FROM team_members m JOIN people p ON p.email = m.email "
        "WHERE m.team = ? AND p.active = 1 ORDER BY m.email", (team,),
    ).fetchall()
    return [r[0] for r in rows]
