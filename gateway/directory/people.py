"""People and teams as the directory keeps them: plain frozen records, no I/O.

An e-mail address is the person's id and is compared case-insensitively everywhere: it is
stored lower-cased (`normalise_email`), so an index finds it whatever case a caller used.
Team names are compared as written (a team called `Data` is not `data`), as the
configuration's `teams:` always were.
"""

from __future__ import annotations

from dataclasses import dataclass

# Where a person came from. `config` people are the configuration's bootstrap set: SCIM and
# the API may not change or remove them (the configuration is their source of truth).
SOURCES = ("config", "scim", "api", "oidc")


def normalise_email(email: str) -> str:
    """The stored form of an address: trimmed and lower-cased."""
    return email.strip().lower()


@dataclass(frozen=True)
class Person:
    email: str
    display_name: str | None = None
    active: bool = True
    admin: bool = False
    integration: bool = False
    teams: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    manager: str | None = None
    source: str = "api"
    scim_id: str | None = None
    external_id: str | None = None
    created_at: str | None = None  # set by the store
    updated_at: str | None = None

    def public(self) -> dict[str, object]:
        """The JSON representation of the users API (camelCase, SPEC §14)."""
        return {
            "email": self.email, "displayName": self.display_name, "active": self.active,
            "admin": self.admin, "integration": self.integration, "teams": list(self.teams),
            "roles": list(self.roles), "manager": self.manager, "source": self.source,
            "externalId": self.external_id, "createdAt": self.created_at,
            "updatedAt": self.updated_at,
        }


@dataclass(frozen=True)
class Team:
    name: str
    scim_id: str | None = None
    external_id: str | None = None
    members: tuple[str, ...] = ()  # e-mail addresses, lower-cased, sorted
