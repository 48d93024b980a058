"""Personal access tokens (SPEC §14): create one (the answer holds the token, the only time
it is ever shown), list them (yours; admins: everyone's), revoke one.

A personal access token cannot create tokens: a leaked token could otherwise renew itself
past its expiry forever. Creating takes a configuration token, an IdP token or a page of
the web inbox; listing and revoking work with any token.
"""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web

from gateway.api.http import answer, read_json, user_of
from gateway.api.keys import AUTH, TOKENS
from gateway.directory.people import Person, normalise_email
from gateway.directory.tokens import (
    DEFAULT_EXPIRES_IN,
    MAX_EXPIRES_IN,
    NAME_MAX,
    ApiToken,
    Tokens,
    looks_like_pat,
)
from gateway.errors import Conflict, Forbidden, InvalidField
from gateway.requests.query import check_params, parse_id_cursor, parse_limit
from gateway.timeutil import parse_api_duration
from gateway.validation import Fields

routes = web.RouteTableDef()
LIST_PARAMS = ("email", "limit", "cursor")


def parse_expires_in(text: object) -> timedelta:
    """`expiresIn`: an ISO 8601 duration (the API's pattern), at most MAX_EXPIRES_IN."""
    try:
        value = parse_api_duration(text)  # type: ignore[arg-type]
    except ValueError as exc:
        raise InvalidField("expiresIn", str(exc)) from None
    if value > MAX_EXPIRES_IN:
        # A rule of the gateway, not of the document (its pattern cannot say "at most a
        # year" across weeks, days and hours): 409, as the other rules' refusals.
        raise Conflict(f"expiresIn: at most P{MAX_EXPIRES_IN.days}D: a token lives a year "
                       "at most", code="expiry-too-long", field="expiresIn",
                       maximum=f"P{MAX_EXPIRES_IN.days}D")
    return value


def parse_name(value: object) -> str:
    name = Fields({"name": value}).text("name", required=True, max_len=NAME_MAX)
    assert name is not None
    return name.strip()


async def create_token(tokens: Tokens, user: Person, name: object,
                       expires_in: object) -> dict[str, object]:
    """What the API and the pages create: the token's document with `token`, shown once."""
    saved, secret = await tokens.create(
        user, parse_name(name),
        parse_expires_in(DEFAULT_EXPIRES_IN if expires_in is None else expires_in))
    return {**saved.public(), "token": secret}


def _bearer(request: web.Request) -> str:
    return request.headers.get("Authorization", "").partition(" ")[2].strip()


@routes.post("/v1/tokens")
async def create(request: web.Request) -> web.Response:
    user = user_of(request)
    presented = _bearer(request)
    if looks_like_pat(presented) and request.app[AUTH].email_for_token(presented) is None:
        raise Forbidden("a personal access token cannot create tokens: use the web inbox's "
                        "Tokens page", code="token-cannot-create-tokens")
    body = Fields(await read_json(request)).only(["name", "expiresIn"])
    created = await create_token(request.app[TOKENS], user, body.raw("name"),
                                 body.raw("expiresIn"))
    return answer(created, status=201)


@routes.get("/v1/tokens")
async def list_tokens(request: web.Request) -> web.Response:
    user = user_of(request)
    query = request.query
    check_params(query, LIST_PARAMS)
    email = query.get("email")
    if not user.admin:
        if email is not None and normalise_email(email) != normalise_email(user.email):
            raise Forbidden("only admins see other people's tokens")
        email = user.email
    after = parse_id_cursor(query)
    limit = parse_limit(query)
    found = await request.app[TOKENS].page(email=email, after_seq=after, limit=limit + 1)
    more = len(found) > limit
    found = found[:limit]
    cursor = str(found[-1][0]) if more and found else None
    return answer({"items": [token.public() for _, token in found], "nextCursor": cursor})


@routes.delete("/v1/tokens/{id}")
async def revoke(request: web.Request) -> web.Response:
    revoked: ApiToken = await request.app[TOKENS].revoke(request.match_info["id"],
                                                         user_of(request))
    return answer({**revoked.public(), "revokedAt": revoked.revoked_at})
