"""The rules of a change to the directory, run inside one write transaction: who may change
whom, deprovisioning when a person leaves, and an audit event for every change.

`by` names the source making the change (`api`, `scim`, `oidc`, `config`): the people of the
configuration (source `config`) are changed only by the configuration itself, at start-up.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from gateway.config import User
from gateway.directory.deprovision import Deprovisioned, deprovision
from gateway.directory.people import Person, Team, normalise_email
from gateway.errors import Conflict, NotFound
from gateway.requests.transitions import Listener
from gateway.store import audit
from gateway.store import directory as store
from gateway.timeutil import now_text


def _guard(existing: Person | None, by: str) -> None:
    if existing is not None and existing.source == "config" and by != "config":
        raise Conflict(f"{existing.email} is declared in the configuration: change it there",
                       code="managed-by-config", email=existing.email)


def _audit(conn: Any, actor: str, kind: str, subject: str, before: Any, after: Any) -> None:
    audit.add(conn, at=now_text(), actor=actor, type=kind, subject=subject,
              before=before, after=after)


def create_person(conn: Any, person: Person, *, actor: str,
                  listeners: Sequence[Listener]) -> Person:
    """A new person; a Conflict when the address is taken (whatever its case)."""
    if store.get_person(conn, person.email) is not None:
        raise Conflict(f"{normalise_email(person.email)} is already a user", code="user-exists",
                       email=normalise_email(person.email))
    return save_person(conn, person, actor=actor, by=person.source, listeners=listeners)


def save_person(conn: Any, person: Person, *, actor: str, by: str,
                listeners: Sequence[Listener]) -> Person:
    """Insert or replace `person`; one who stops being active is deprovisioned with it."""
    existing = store.get_person(conn, person.email)
    _guard(existing, by)
    if existing is not None:  # ids given by an IdP stay unless the change names new ones
        person = dataclasses.replace(
            person, scim_id=person.scim_id or existing.scim_id,
            external_id=person.external_id or existing.external_id)
    saved = store.save_person(conn, person)
    if not saved.active and (existing is None or existing.active):
        deprovision(conn, saved.email, listeners=listeners)
    _audit(conn, actor, "user.created" if existing is None else "user.updated",
           f"user:{saved.email}", None if existing is None else existing.public(),
           saved.public())
    return saved


def delete_person(conn: Any, email: str, *, actor: str, by: str,
                  listeners: Sequence[Listener]) -> Deprovisioned:
    existing = store.get_person(conn, email)
    if existing is None:
        raise NotFound(f"no user {normalise_email(email)}", code="user-not-found")
    _guard(existing, by)
    # Inactive first, as a deactivation would: what the deprovisioning sends goes to the
    # people who stay, not to the one who leaves.
    store.set_active(conn, existing.email, False)
    done = deprovision(conn, existing.email, listeners=listeners)
    store.delete_person(conn, existing.email)
    _audit(conn, actor, "user.deleted", f"user:{existing.email}", existing.public(), None)
    return done


def save_team(conn: Any, team: Team, *, actor: str) -> Team:
    existing = store.get_team(conn, team.name)
    saved = store.save_team(conn, team)
    _audit(conn, actor, "team.created" if existing is None else "team.updated",
           f"team:{saved.name}", None if existing is None else dataclasses.asdict(existing),
           dataclasses.asdict(saved))
    return saved


def delete_team(conn: Any, name: str, *, actor: str) -> None:
    existing = store.get_team(conn, name)
    if existing is None:
        raise NotFound(f"no team {name}", code="team-not-found")
    store.delete_team(conn, name)
    _audit(conn, actor, "team.deleted", f"team:{name}", dataclasses.asdict(existing), None)


def sync_configured(conn: Any, users: Sequence[User], *,
                    listeners: Sequence[Listener]) -> dict[str, int]:
    """The configuration's users as people of source `config` (at start-up). A person the
    configuration no longer declares is deprovisioned and made inactive, and becomes a
    person of source `api`, so that an admin may remove or reactivate them."""
    declared = {normalise_email(u.email) for u in users}
    counts = {"saved": 0, "removed": 0}
    for user in users:
        existing = store.get_person(conn, user.email)
        wanted = Person(
            email=user.email, admin=user.admin, integration=user.integration,
            teams=user.teams, roles=user.roles, source="config", active=True,
            display_name=user.display_name or (existing.display_name if existing else None),
            manager=(normalise_email(user.manager) if user.manager
                     else existing.manager if existing else None),
            scim_id=existing.scim_id if existing else None,
            external_id=existing.external_id if existing else None)
        if existing is not None and _same(existing, wanted):
            continue
        save_person(conn, wanted, actor="config", by="config", listeners=listeners)
        counts["saved"] += 1
    after = None
    while True:
        page = store.find_people(conn, source="config", limit=500, after=after)
        for person in page:
            if person.email not in declared:
                save_person(conn, dataclasses.replace(person, active=False, source="api"),
                            actor="config", by="config", listeners=listeners)
                counts["removed"] += 1
        if len(page) < 500:
            return counts
        after = page[-1].email


def _same(a: Person, b: Person) -> bool:
    keep = ("created_at", "updated_at")
    return {k: v for k, v in dataclasses.asdict(a).items() if k not in keep} == \
        {k: v for k, v in dataclasses.asdict(b).items() if k not in keep} | \
        {"email": normalise_email(b.email), "teams": tuple(sorted(set(b.teams)))}
