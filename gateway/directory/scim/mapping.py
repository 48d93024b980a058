"""SCIM resources ⇄ the directory's people and teams (no I/O), on the resources' JSON form.

User → Person: `userName`, when it is an e-mail address, else the primary e-mail (else the
first) → `email`, lower-cased; `displayName` (else `name.formatted`, else `givenName
familyName`) → `display_name`; `active`; `roles[].value` → `roles`; `externalId`; the
enterprise extension's `manager.value` (a SCIM id) → the manager, resolved to their e-mail
by the caller. `id` is the person's `scim_id`, a UUID the gateway assigns. No attribute of a
User makes a person admin or integration: only the groups that the configuration names do
(`directory.scim.admin_group`, `integration_group`; gateway.directory.scim.storage).

Group → Team: `displayName` → the team's name; `members[].value` (user SCIM ids) → members.

Attributes the directory does not keep (`name.familyName`, `locale`, phone numbers, …) are
accepted and not stored: a resource read back shows what the gateway keeps.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from typing import Any

from scim2_models import InvalidValueException

from gateway.directory.people import Person, Team

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")
Document = dict[str, Any]


def email_of(user: Document) -> str:
    """The address that names the person: `userName` if it is one, else an e-mail's."""
    name = str(user.get("userName") or "").strip()
    if _EMAIL.fullmatch(name) and len(name) <= 254:
        return name.lower()
    emails = [e for e in user.get("emails") or [] if isinstance(e.get("value"), str)]
    emails.sort(key=lambda e: not e.get("primary"))  # the primary one first, the order kept
    for entry in emails:
        value = entry["value"].strip()
        if _EMAIL.fullmatch(value) and len(value) <= 254:
            return value.lower()
    raise InvalidValueException(detail="userName: the gateway names a person by an e-mail "
                                       "address: send one as userName or in emails")


def display_name_of(user: Document) -> str | None:
    if user.get("displayName"):
        return str(user["displayName"])
    name = user.get("name") or {}
    if name.get("formatted"):
        return str(name["formatted"])
    parts = [name[p] for p in ("givenName", "familyName") if name.get(p)]
    return " ".join(parts) or None


def manager_id_of(user: Document) -> str | None:
    manager = (user.get(ENTERPRISE) or {}).get("manager") or {}
    value = manager.get("value")
    return value if isinstance(value, str) and value else None


def roles_of(user: Document) -> tuple[str, ...]:
    seen: list[str] = []
    for role in user.get("roles") or []:
        value = role.get("value")
        if isinstance(value, str) and value and value not in seen:
            seen.append(value)
    return tuple(seen)


def person_from(user: Document, base: Person, manager: str | None) -> Person:
    """`base` (the stored person, or a new one) with what the User resource says; its
    flags, teams and source untouched."""
    active = user.get("active")
    return dataclasses.replace(
        base, email=email_of(user), display_name=display_name_of(user),
        active=True if active is None else bool(active), roles=roles_of(user),
        manager=manager, external_id=user.get("externalId") or None)


def user_from(person: Person, manager_id: str | None) -> Document:
    """The User resource of a person (the manager given as their SCIM id)."""
    document: Document = {
        "schemas": [USER],
        "id": person.scim_id,
        "userName": person.email,
        "active": person.active,
        "emails": [{"value": person.email, "primary": True, "type": "work"}],
        "meta": _meta("User", person.created_at, person.updated_at, (
            person.email, person.display_name, person.active, person.roles, person.manager,
            person.external_id)),
    }
    if person.external_id:
        document["externalId"] = person.external_id
    if person.display_name:
        document["displayName"] = person.display_name
    if person.roles:
        document["roles"] = [{"value": r} for r in person.roles]
    if manager_id is not None:
        document["schemas"].append(ENTERPRISE)
        document[ENTERPRISE] = {"manager": {"value": manager_id, "$ref": f"Users/{manager_id}"}}
    return document


def team_name_of(group: Document) -> str:
    name = str(group.get("displayName") or "").strip()
    if not name or any(c in name for c in "\r\n\x00"):
        raise InvalidValueException(detail="displayName: a group needs a one-line name")
    return name


def member_ids_of(group: Document) -> list[str]:
    ids: list[str] = []
    for member in group.get("members") or []:
        if member.get("type") not in (None, "User"):
            raise InvalidValueException(detail="members: only users may be members of a "
                                               "group here (no nested groups)")
        value = member.get("value")
        if isinstance(value, str) and value and value not in ids:
            ids.append(value)
    return ids


def group_from(team: Team, members: list[tuple[str, str]] | None) -> Document:
    """The Group resource of a team; `members` as (SCIM id, e-mail), None to leave out."""
    document: Document = {
        "schemas": [GROUP],
        "id": team.scim_id,
        "displayName": team.name,
        "meta": _meta("Group", None, None, (team.name, team.external_id, team.members)),
    }
    if team.external_id:
        document["externalId"] = team.external_id
    if members:
        document["members"] = [{"value": sid, "display": email, "$ref": f"Users/{sid}",
                                "type": "User"} for sid, email in members]
    return document


def _meta(kind: str, created: str | None, updated: str | None, state: Any) -> Document:
    meta: Document = {"resourceType": kind,
                      "version": 'W/"' + hashlib.sha256(repr(state).encode()).hexdigest()[:16]
                                 + '"'}
    if created:
        meta["created"] = created
    if updated or created:
        meta["lastModified"] = updated or created
    return meta
