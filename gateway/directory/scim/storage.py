"""The directory as scim2-server's storage: Users are people, Groups are teams.

The library validates each request and applies PUT and PATCH to the resource it reads
here; `update` then receives the whole new state, and this module turns it into the
directory's changes, through `Directory` (one transaction each, with what they cause: a
person who stops being active is deprovisioned in the same transaction).

Rules kept here:
- The SCIM resources are the people of source `scim` and the teams with a SCIM id. A POST
  for an address the directory already knows from the API or OIDC adopts that person
  (source becomes `scim`); one declared in the configuration is refused (409), and so is
  any change or removal of such a person.
- A person's e-mail is their id: a PUT or PATCH that changes `userName` is refused
  (`mutability`); create a new user instead.
- No User attribute makes a person admin or integration. Membership of the group named by
  `directory.scim.admin_group` (`integration_group`) does, and leaving it undoes it.
- A group never loses the configuration's people: they are not SCIM's to remove.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable
from typing import Any

from scim2_models import (
    InvalidValueException,
    MutabilityException,
    NotFoundException,
    NotImplementedException,
    ResourceType,
    ScimProvider,
    SearchRequest,
    UniquenessException,
)
from scim2_server.storage import AsyncScimStorage, SearchPage

from gateway.directory.people import Person, Team
from gateway.directory.scim import filters, mapping
from gateway.directory.service import Directory
from gateway.errors import Conflict
from gateway.store import directory as store
from gateway.store.database import Database

ACTOR = "scim"  # the actor of the audit events of SCIM's changes
PAGE = 500  # rows read at a time when walking a listing


@dataclasses.dataclass(frozen=True)
class FlagGroups:
    """The groups whose members are admins / integrations (none: SCIM grants neither)."""

    admin: str | None = None
    integration: str | None = None

    def flags_of(self, team: str) -> tuple[str, ...]:
        return tuple(flag for flag, name in (("admin", self.admin),
                                             ("integration", self.integration))
                     if name is not None and name == team)


def _people_by_scim_id(conn: Any, ids: list[str]) -> dict[str, Person]:
    found = (store.get_person_by_scim_id(conn, i) for i in ids)
    return {p.scim_id: p for p in found if p is not None and p.scim_id}


def _people_by_email(conn: Any, emails: list[str]) -> dict[str, Person]:
    found = (store.get_person(conn, e) for e in emails)
    return {p.email: p for p in found if p is not None}


class DirectoryStorage(AsyncScimStorage):
    """Writes go through `Directory` (its rules and transactions); a group's members are
    read in one round trip of the store (`database.read`), not one per member."""

    def __init__(self, directory: Directory, database: Database, provider: ScimProvider,
                 flag_groups: FlagGroups = FlagGroups()) -> None:
        self._directory = directory
        self._database = database
        self._flags = flag_groups
        # The provider's models: a resource read here is one the library can PUT and PATCH.
        self._user_model = provider.model_for("User")
        self._group_model = provider.model_for("Group")

    # --- reads ---------------------------------------------------------------------------

    async def get(self, resource_type: ResourceType, resource_id: str, *,
                  response_parameters: Any = None) -> Any:
        if resource_type.id == "User":
            return await self._user_resource(await self._person(resource_id))
        team = await self._team(resource_id)
        return await self._group_resource(team, _wants_members(response_parameters))

    async def search(self, resource_types: list[ResourceType],
                     search_request: SearchRequest[Any], *, position: Any = None
                     ) -> SearchPage:
        if len(resource_types) != 1:
            raise NotImplementedException(detail="search /Users or /Groups, not the root")
        kind = resource_types[0].id
        start = max(search_request.start_index or 1, 1)
        count = search_request.count
        wanted = count if count is not None else 100
        if search_request.filter is not None:
            found = await self._filtered(kind, filters.plan(search_request.filter.ast, kind))
            total, records = len(found), found[start - 1:start - 1 + wanted]
        else:
            total, records = await self._listing(kind, start - 1, wanted)
        if kind == "User":
            resources = [await self._user_resource(p) for p in records]
        else:
            members = _wants_members(search_request)
            resources = [await self._group_resource(t, members) for t in records]
        return SearchPage(total=total, resources=resources)

    async def _filtered(self, kind: str, lookups: list[filters.Lookup]) -> list[Any]:
        found: dict[str, Any] = {}
        for lookup in lookups:
            for record in await self._candidates(kind, lookup):
                if record.scim_id and lookup.matches(_keys(record)) \
                        and (kind == "Group" or record.source == "scim"):
                    found[record.scim_id] = record
        return sorted(found.values(), key=lambda r: r.email if kind == "User" else r.name)

    async def _candidates(self, kind: str, lookup: filters.Lookup) -> list[Any]:
        key, value = lookup.key, lookup.values[lookup.key]
        directory = self._directory
        if kind == "User":
            if key == "scim_id":
                return _listed(await directory.get_by_scim_id(value))
            if key == "email":
                return _listed(await directory.get(value))
            return await directory.find(**{key: value}, source="scim",
                                        limit=filters.MAX_TERMS * 10)
        if key == "scim_id":
            return _listed(await directory.team_by_scim_id(value))
        if key == "display_name":
            return _listed(await directory.team(value))
        return await directory.find_teams(external_id=value, limit=filters.MAX_TERMS * 10)

    async def _listing(self, kind: str, skip: int, wanted: int) -> tuple[int, list[Any]]:
        """Every SCIM resource of a kind, walked in pages of the store's order: the total,
        and `wanted` records after the first `skip`."""
        total, page_of = 0, []
        after: str | None = None
        while True:
            if kind == "User":
                rows = await self._directory.find(source="scim", limit=PAGE, after=after)
                after = rows[-1].email if rows else None
            else:
                rows = await self._directory.find_teams(limit=PAGE, after=after)
                after = rows[-1].name if rows else None
                rows = [t for t in rows if t.scim_id]
            for row in rows:
                if skip <= total < skip + wanted:
                    page_of.append(row)
                total += 1
            if after is None or len(rows) == 0:
                return total, page_of

    async def _person(self, scim_id: str) -> Person:
        person = await self._directory.get_by_scim_id(scim_id)
        if person is None:
            raise NotFoundException(detail=f"no user {scim_id}")
        return person

    async def _team(self, scim_id: str) -> Team:
        team = await self._directory.team_by_scim_id(scim_id)
        if team is None:
            raise NotFoundException(detail=f"no group {scim_id}")
        return team

    async def _user_resource(self, person: Person) -> Any:
        manager_id = None
        if person.manager:
            manager = await self._directory.person(person.manager)
            manager_id = manager.scim_id if manager is not None else None
        return self._user_model.model_validate(mapping.user_from(person, manager_id))

    async def _group_resource(self, team: Team, with_members: bool) -> Any:
        members = None
        if with_members:
            people = await self._database.read(_people_by_email, list(team.members))
            members = [(p.scim_id, p.email) for p in people.values() if p.scim_id]
        return self._group_model.model_validate(mapping.group_from(team, members))

    # --- writes --------------------------------------------------------------------------

    async def create(self, resource_type: ResourceType, resource: Any) -> Any:
        document = resource.model_dump()
        if resource_type.id == "User":
            return await self._user_resource(await self._create_person(document))
        return await self._group_resource(await self._create_team(document), True)

    async def update(self, resource_type: ResourceType, resource: Any, *,
                     expected_version: str | None = None) -> Any:
        document = resource.model_dump()
        if resource_type.id == "User":
            return await self._user_resource(await self._update_person(document))
        return await self._group_resource(await self._update_team(document), True)

    async def delete(self, resource_type: ResourceType, resource_id: str, *,
                     expected_version: str | None = None) -> None:
        if resource_type.id == "User":
            person = _changeable(await self._person(resource_id))
            await self._directory.delete(person.email, actor=ACTOR, by="scim")
            return
        team = await self._team(resource_id)
        await self._set_flags(team.name, (), team.members)
        await self._directory.delete_team(team.name, actor=ACTOR)

    async def _create_person(self, user: Any) -> Person:
        email = mapping.email_of(user)
        manager = await self._manager_email(mapping.manager_id_of(user))
        base = Person(email=email, source="scim", scim_id=str(uuid.uuid4()))
        try:  # the common case first: a new address (no read before the write)
            return await self._directory.create(mapping.person_from(user, base, manager),
                                                actor=ACTOR)
        except Conflict:
            existing = await self._directory.get(email)
        if existing is None:  # removed meanwhile
            raise UniquenessException(detail=f"userName: {email} changed meanwhile: try "
                                             "again")
        _changeable(existing)
        if existing.source == "scim":
            raise UniquenessException(detail=f"userName: {email} is already a user")
        # A person from the API or OIDC sign-in: SCIM adopts them.
        adopted = dataclasses.replace(existing, source="scim",
                                      scim_id=existing.scim_id or base.scim_id)
        return await self._directory.save(mapping.person_from(user, adopted, manager),
                                          actor=ACTOR, by="scim")

    async def _update_person(self, user: Any) -> Person:
        current = _changeable(await self._person(user["id"]))
        if mapping.email_of(user) != current.email:
            raise MutabilityException(detail="userName: the gateway names a person by their "
                                             "e-mail address, which cannot change: create "
                                             "a new user")
        manager = await self._manager_email(mapping.manager_id_of(user))
        person = mapping.person_from(user, current, manager)
        if person == current:
            return current
        return await self._directory.save(person, actor=ACTOR, by="scim")

    async def _manager_email(self, manager_id: str | None) -> str | None:
        if manager_id is None:
            return None
        manager = await self._directory.get_by_scim_id(manager_id)
        if manager is None:
            raise InvalidValueException(detail=f"manager: no user {manager_id}")
        return manager.email

    async def _create_team(self, group: Any) -> Team:
        name = mapping.team_name_of(group)
        existing = await self._directory.team(name)
        if existing is not None and existing.scim_id:
            raise UniquenessException(detail=f"displayName: a group {name} exists")
        members = await self._member_emails(group)
        kept = await self._configured(existing.members if existing else ())
        team = Team(name=name, scim_id=str(uuid.uuid4()),
                    external_id=group.get("externalId") or None,
                    members=tuple(sorted({*members, *kept})))
        saved = await self._directory.save_team(team, actor=ACTOR)
        await self._set_flags(name, members, existing.members if existing else ())
        return saved

    async def _update_team(self, group: Any) -> Team:
        current = await self._team(group["id"])
        name = mapping.team_name_of(group)
        if name != current.name:
            other = await self._directory.team(name)
            if other is not None:
                raise UniquenessException(detail=f"displayName: a group {name} exists")
            await self._set_flags(current.name, (), current.members)
            await self._directory.rename_team(current.name, name)
            previous: tuple[str, ...] = ()
        else:
            previous = current.members
        members = await self._member_emails(group)
        kept = await self._configured(current.members)
        team = Team(name=name, scim_id=current.scim_id,
                    external_id=group.get("externalId") or None,
                    members=tuple(sorted({*members, *kept})))
        saved = await self._directory.save_team(team, actor=ACTOR)
        await self._set_flags(name, members, previous)
        return saved

    async def _member_emails(self, group: Any) -> list[str]:
        ids = mapping.member_ids_of(group)
        people = await self._database.read(_people_by_scim_id, ids)
        for scim_id in ids:
            if scim_id not in people:
                raise InvalidValueException(detail=f"members: no user {scim_id}")
        return [people[i].email for i in ids]

    async def _configured(self, emails: Iterable[str]) -> list[str]:
        """Which of a team's members the configuration declares (SCIM leaves them be)."""
        people = await self._database.read(_people_by_email, list(emails))
        return [p.email for p in people.values() if p.source == "config"]

    async def _set_flags(self, team: str, members: Iterable[str],
                         previous: Iterable[str]) -> None:
        """Grant the team's flags to who joined it and take them from who left it."""
        flags = self._flags.flags_of(team)
        if not flags:
            return
        now, before = set(members), set(previous)
        for email, value in [*((e, True) for e in now - before),
                             *((e, False) for e in before - now)]:
            person = await self._directory.get(email)
            if person is None or person.source == "config":
                continue
            changed = dataclasses.replace(person, **dict.fromkeys(flags, value))
            if changed != person:
                await self._directory.save(changed, actor=ACTOR, by="scim")


def _changeable(person: Person) -> Person:
    if person.source == "config":
        raise Conflict(f"{person.email} is declared in the configuration: change it there",
                       code="configured-user")
    return person


def _listed(record: Any) -> list[Any]:
    return [] if record is None else [record]


def _keys(record: Any) -> dict[str, Any]:
    if isinstance(record, Person):
        return {"scim_id": record.scim_id, "email": record.email,
                "external_id": record.external_id, "display_name": record.display_name}
    return {"scim_id": record.scim_id, "external_id": record.external_id,
            "display_name": record.name}


def _wants_members(parameters: Any) -> bool:
    """Whether the answer shows `members` (Entra asks `excludedAttributes=members`)."""
    excluded = getattr(parameters, "excluded_attributes", None) or []
    attributes = getattr(parameters, "attributes", None)
    names = {str(p).lower().rsplit(":", 1)[-1] for p in excluded}
    if "members" in names:
        return False
    if attributes:
        return any(str(p).lower().rsplit(":", 1)[-1].startswith("members")
                   for p in attributes)
    return True

