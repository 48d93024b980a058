"""`Directory`: the async facade that the API, the pages, SCIM and OIDC use.

Reads of one person (every authenticated request reads its caller) are cached, and the cache
is kept exact by the directory's version (store.directory): each lookup reads the version in
the same round trip, and a version that moved drops the cache. So a person deactivated on
one instance is refused by every instance on its next request, while a request whose caller
did not change costs one small read.

Writes go through `gateway.directory.changes`, in one transaction with what they cause
(deprovisioning a person's requests, the audit events).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from gateway.config import User
from gateway.directory import changes
from gateway.directory.deprovision import Deprovisioned
from gateway.directory.people import Person, Team, normalise_email
from gateway.requests.transitions import Listener
from gateway.store import directory as store
from gateway.store.database import Database
from gateway.store.dialect import exclusively

CACHE_MAX = 10_000  # people; a few MB at most


class Directory:
    def __init__(self, database: Database, listeners: Sequence[Listener] = ()) -> None:
        self._database = database
        self._listeners = listeners  # the transitions' listeners (outbox, metrics)
        self._version: int | None = None
        self._people: dict[str, Person | None] = {}

    # --- reads -------------------------------------------------------------------------

    async def person(self, email: str) -> Person | None:
        """The person with this address (any case), as of now, on any instance."""
        email = normalise_email(email)
        known = self._version if email in self._people else None
        version, changed, found = await self._database.read_small(
            store.person_if_changed, email, known)
        if not changed:
            if version == self._version and email in self._people:
                return self._people[email]
            # Another lookup moved the cache on meanwhile: read this one afresh.
            return await self._database.read(store.get_person, email)
        if self._version is None or version > self._version:
            self._people.clear()
            self._version = version
        if version == self._version:  # never cache what is older than the cache
            if len(self._people) >= CACHE_MAX:
                self._people.clear()
            self._people[email] = found
        return found

    async def active_person(self, email: str) -> Person | None:
        found = await self.person(email)
        return found if found is not None and found.active else None

    async def get(self, email: str) -> Person | None:
        """Uncached: straight from the store."""
        return await self._database.read(store.get_person, email)

    async def get_by_scim_id(self, scim_id: str) -> Person | None:
        return await self._database.read(store.get_person_by_scim_id, scim_id)

    async def find(self, **filters: Any) -> list[Person]:
        """`store.directory.find_people`'s filters, `limit` and `after`."""
        return await self._database.read(_find_people, filters)

    async def team(self, name: str) -> Team | None:
        return await self._database.read(store.get_team, name)

    async def team_by_scim_id(self, scim_id: str) -> Team | None:
        return await self._database.read(store.get_team_by_scim_id, scim_id)

    async def find_teams(self, **filters: Any) -> list[Team]:
        return await self._database.read(_find_teams, filters)

    # --- writes ------------------------------------------------------------------------

    async def create(self, person: Person, *, actor: str) -> Person:
        """A new person (source `person.source`); Conflict when the address is taken."""
        return await self._database.write(changes.create_person, person, actor=actor,
                                          listeners=self._listeners)

    async def save(self, person: Person, *, actor: str, by: str | None = None) -> Person:
        """Insert or replace a person; `by` (default: `person.source`) is the source making
        the change. A person who stops being active is deprovisioned in the same
        transaction."""
        return await self._database.write(changes.save_person, person, actor=actor,
                                          by=by or person.source, listeners=self._listeners)

    async def delete(self, email: str, *, actor: str, by: str) -> Deprovisioned:
        return await self._database.write(changes.delete_person, email, actor=actor, by=by,
                                          listeners=self._listeners)

    async def save_team(self, team: Team, *, actor: str) -> Team:
        return await self._database.write(changes.save_team, team, actor=actor)

    async def delete_team(self, name: str, *, actor: str) -> None:
        await self._database.write(changes.delete_team, name, actor=actor)

    async def rename_team(self, old: str, new: str) -> None:
        await self._database.write(store.rename_team, old, new)

    async def set_members(self, team: str, emails: Iterable[str]) -> None:
        await self._database.write(store.set_members, team, tuple(emails))

    async def add_members(self, team: str, emails: Iterable[str]) -> None:
        await self._database.write(store.add_members, team, tuple(emails))

    async def remove_members(self, team: str, emails: Iterable[str]) -> None:
        await self._database.write(store.remove_members, team, tuple(emails))

    def sync_configured(self, conn: Any, users: Sequence[User]) -> dict[str, int]:
        """The configuration's users into the store (a write operation, run at start-up;
        instances starting together take turns)."""
        exclusively(conn, "configured-directory")
        return changes.sync_configured(conn, users, listeners=self._listeners)


def _find_people(conn: Any, filters: dict[str, Any]) -> list[Person]:
    return store.find_people(conn, **filters)


def _find_teams(conn: Any, filters: dict[str, Any]) -> list[Team]:
    return store.find_teams(conn, **filters)
