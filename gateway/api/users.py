"""The users API (SPEC §14): `GET /v1/me` for everyone; the directory's people for admins, with
`POST`/`PUT`/`DELETE` for deployments that have no identity provider.

People made here have source `api`. The configuration's people (source `config`) are read
only: a change is a 409 that says to change the configuration. A `PUT` that makes a person
inactive, and a `DELETE`, deprovision them in the same transaction (SPEC §14).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from aiohttp import web

from gateway.api.http import answer, read_json, user_of
from gateway.api.keys import DIRECTORY
from gateway.directory import SOURCES, Person, normalise_email
from gateway.errors import Conflict, InvalidField, NotFound
from gateway.requests import permissions
from gateway.requests.query import check_params, parse_limit
from gateway.validation import Fields

routes = web.RouteTableDef()
FIELDS = ("email", "displayName", "active", "admin", "integration", "teams", "roles",
          "manager", "externalId")
MAX_TEAMS = 1000


def _flag(name: str, raw: str) -> bool:
    if raw not in ("true", "false"):
        raise InvalidField(name, "expected true or false")
    return raw == "true"


def check_person(body: Any, *, email: str | None) -> Person:
    """A user body (POST, or PUT with `email` from the path) made into a Person."""
    f = Fields(body).only(FIELDS)
    given = f.email("email", required=email is None)
    if email is not None and given is not None \
            and normalise_email(given) != normalise_email(email):
        raise Conflict("email: does not match the address in the path", code="email-mismatch",
                       field="email")
    manager = f.email("manager")
    address = normalise_email(email if email is not None else given or "")
    if manager is not None and normalise_email(manager) == address:
        # A rule about two fields' values, not their form: the API document cannot say it.
        raise Conflict("manager: a user cannot be their own manager", code="own-manager",
                       field="manager")
    return Person(
        email=address,
        display_name=f.text("displayName"),
        active=f.boolean("active", default=True),
        admin=f.boolean("admin"),
        integration=f.boolean("integration"),
        teams=tuple(f.texts("teams", max_items=MAX_TEAMS)),
        roles=tuple(f.texts("roles")),
        manager=normalise_email(manager) if manager else None,
        external_id=f.text("externalId"),
        source="api",
    )


@routes.get("/v1/me")
async def me(request: web.Request) -> web.Response:
    return answer(user_of(request).public())


@routes.get("/v1/users")
async def list_users(request: web.Request) -> web.Response:
    permissions.check_admin(user_of(request))
    query = request.query
    check_params(query, ("email", "team", "active", "source", "limit", "cursor"))
    filters: dict[str, Any] = {}
    if "email" in query:
        filters["email"] = query["email"]
    if "team" in query:
        filters["team"] = query["team"]
    if "active" in query:
        filters["active"] = _flag("active", query["active"])
    if "source" in query:
        if query["source"] not in SOURCES:
            raise InvalidField("source", "expected one of " + ", ".join(SOURCES))
        filters["source"] = query["source"]
    limit = parse_limit(query)
    people = await request.app[DIRECTORY].find(**filters, limit=limit + 1,
                                               after=query.get("cursor"))
    more = len(people) > limit
    people = people[:limit]
    cursor = people[-1].email if more and people else None
    return answer({"items": [p.public() for p in people], "nextCursor": cursor})


async def _existing(request: web.Request) -> Person:
    email = request.match_info["email"]
    found = await request.app[DIRECTORY].get(email)
    if found is None:
        raise NotFound(f"no user {normalise_email(email)}", code="user-not-found")
    return found


@routes.get("/v1/users/{email}")
async def get_user(request: web.Request) -> web.Response:
    permissions.check_admin(user_of(request))
    return answer((await _existing(request)).public())


@routes.post("/v1/users")
async def create_user(request: web.Request) -> web.Response:
    admin = user_of(request)
    permissions.check_admin(admin)
    person = check_person(await read_json(request), email=None)
    created = await request.app[DIRECTORY].create(person, actor=admin.email)
    return answer(created.public(), status=201)


@routes.put("/v1/users/{email}")
async def replace_user(request: web.Request) -> web.Response:
    admin = user_of(request)
    permissions.check_admin(admin)
    person = check_person(await read_json(request), email=request.match_info["email"])
    existing = await _existing(request)
    # The person keeps where they came from (an admin may correct a SCIM person).
    wanted = dataclasses.replace(person, source=existing.source)
    saved = await request.app[DIRECTORY].save(wanted, actor=admin.email, by="api")
    return answer(saved.public())


@routes.delete("/v1/users/{email}")
async def delete_user(request: web.Request) -> web.Response:
    admin = user_of(request)
    permissions.check_admin(admin)
    await request.app[DIRECTORY].delete(request.match_info["email"], actor=admin.email,
                                        by="api")
    return web.Response(status=204)
