"""SCIM resources ⇄ the directory's people and teams (no I/O).

User → Person: `userName`, when it is an e-mail address, else the primary e-mail (else the
first) → `email`, lower-cased; `displayName` (else `name.formatted`, else `givenName
familyName`) → `display_name`; `active`; `roles[].value` → `roles`; `externalId`; the
enterprise extension's `manager.value` (a SCIM id) → the manager, resolved to their e-mail
by the caller. `id` is the person's `scim_id`, a UUID the gateway assigns. No attribute of a
User makes a person admin or integration: only the groups that the configuration names do
(`directory.scim.admin_group`, `integration_group`; gateway.directory.scim.storage).

Group → Team: `displayName` → the team's name; `members[].value` (user SCIM ids) → members.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from datetime import datetime
from typing import Any

from scim2_models import (
    Email,
    EnterpriseUser,
    Group,
    GroupMember,
    InvalidValueException,
    Manager,
    Meta,
    Role,
    User,
)

from gateway.directory.people import Person, Team

UserModel = User[EnterpriseUser]
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")


def email_of(user: Any) -> str:
    """The address that names the person: `userName` if it is one, else an e-mail's."""
    name = (user.user_name or "").strip()
    if _EMAIL.fullmatch(name):
        return name.lower()
    emails = [e for e in (user.emails or []) if e.value]
    emails.sort(key=lambda e: not e.primary)  # the primary one first, the order kept
    for entry in emails:
        if _EMAIL.fullmatch(entry.value.strip()):
            return entry.value.strip().lower()
    raise InvalidValueException(detail="userName: the gateway names a person by an e-mail "
                                       "address: send one as userName or in emails")


def display_name_of(user: Any) -> str | None:
    if user.display_name:
        return user.display_name
    name = user.name
    if name is None:
        return None
    if name.formatted:
        return name.formatted
    parts = [p for p in (name.given_name, name.family_name) if p]
    return " ".join(parts) or None


def manager_id_of(user: Any) -> str | None:
    extension = user[EnterpriseUser] if _has_extension(user) else None
    manager = extension.manager if extension is not None else None
    return manager.value if manager is not None and manager.value else None


def _has_extension(user: Any) -> bool:
    try:
        return user[EnterpriseUser] is not None
    except KeyError:
        return False


def roles_of(user: Any) -> tuple[str, ...]:
    seen: list[str] = []
    for role in user.roles or []:
        if role.value and role.value not in seen:
            seen.append(role.value)
    return tuple(seen)


def person_from(user: Any, base: Person, manager: str | None) -> Person:
    """`base` (the stored person, or a new one) with what the User resource says; its
    flags, teams and source untouched."""
    return dataclasses.replace(
        base, email=email_of(user), display_name=display_name_of(user),
        active=True if user.active is None else bool(user.active), roles=roles_of(user),
        manager=manager, external_id=user.external_id or None)


def user_from(person: Person, manager_id: str | None) -> Any:
    """The User resource of a person (the manager given as their SCIM id)."""
    user = UserModel(
        id=person.scim_id, external_id=person.external_id, user_name=person.email,
        display_name=person.display_name, active=person.active,
        # Built unvalidated: the address was accepted when it was stored, and the library's
        # e-mail check refuses reserved domains (`.local`) that directories do use.
        emails=[Email.model_construct(value=person.email, primary=True,
                                      type=Email.Type.work)],
        roles=[Role(value=r) for r in person.roles] or None,
        meta=_meta("User", person.created_at, person.updated_at,
                   (person.email, person.display_name, person.active, person.roles,
                    person.manager, person.external_id)),
    )
    if manager_id is not None:
        user[EnterpriseUser] = EnterpriseUser(
            manager=Manager(value=manager_id, ref=f"Users/{manager_id}"))
    return user


def team_name_of(group: Any) -> str:
    name = (group.display_name or "").strip()
    if not name or any(c in name for c in "\r\n\x00"):
        raise InvalidValueException(detail="displayName: a group needs a one-line name")
    return name


def member_ids_of(group: Any) -> list[str]:
    ids: list[str] = []
    for member in group.members or []:
        if member.type not in (None, "User"):
            raise InvalidValueException(detail="members: only users may be members of a "
                                               "group here (no nested groups)")
        if member.value and member.value not in ids:
            ids.append(member.value)
    return ids


def group_from(team: Team, members: list[tuple[str, str]] | None,
               created: str | None = None) -> Any:
    """The Group resource of a team; `members` as (SCIM id, e-mail), None to leave out."""
    return Group(
        id=team.scim_id, external_id=team.external_id, display_name=team.name,
        members=None if members is None else [
            GroupMember(value=sid, display=email, ref=f"Users/{sid}", type="User")
            for sid, email in members] or None,
        meta=_meta("Group", created, None, (team.name, team.external_id, team.members)),
    )


def _meta(kind: str, created: str | None, updated: str | None, state: Any) -> Meta:
    version = hashlib.sha256(repr(state).encode()).hexdigest()[:16]
    return Meta(resource_type=kind, created=_time(created), last_modified=_time(updated or
                                                                               created),
                version=f'W/"{version}"')


def _time(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
