"""The Tokens page: a person's personal access tokens (SPEC §14) — list, create (the token
is shown on the answer to the form, once), revoke. The API's operations
(`gateway.api.tokens.create_token`, `Tokens.revoke`) behind the same checks.

The page that shows a new token is the answer to the POST itself, not a redirect: the token
exists nowhere else to show it from (only its digest is kept). The middleware marks every
page `Cache-Control: no-store`.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.api.keys import TOKENS
from gateway.api.tokens import create_token
from gateway.directory.people import Person
from gateway.directory.tokens import DEFAULT_EXPIRES_IN, MAX_LIVE
from gateway.errors import GatewayError
from gateway.timeutil import format_time
from gateway.ui.keys import VISITOR
from gateway.ui.render import page, see_other

routes = web.RouteTableDef()
EXPIRY_CHOICES = (("P7D", "7 days"), ("P30D", "30 days"), ("P90D", "90 days"),
                  ("P366D", "1 year"))
SHOWN = 500  # a person has at most MAX_LIVE working tokens; expired ones stay until revoked


def _user(request: web.Request) -> Person:
    user = request[VISITOR].user
    assert user is not None  # the middleware sent visitors without one to sign in
    return user


async def _tokens_page(request: web.Request, *, created: dict[str, Any] | None = None,
                       error: GatewayError | None = None, name: str = "",
                       expires_in: str = DEFAULT_EXPIRES_IN, status: int = 200
                       ) -> web.Response:
    user = _user(request)
    service = request.config_dict[TOKENS]
    found = await service.page(email=user.email, after_seq=None, limit=SHOWN)
    now = format_time(service.clock())
    return page(request, "tokens.html.j2", status=status, title="Tokens",
                tokens=[t.public() for _, t in found], created=created, error=error,
                name=name, expires_in=expires_in, choices=EXPIRY_CHOICES, now=now,
                max_live=MAX_LIVE, done=request.query.get("done") == "revoked")


@routes.get("/ui/tokens")
async def tokens(request: web.Request) -> web.Response:
    return await _tokens_page(request)


@routes.post("/ui/tokens")
async def create(request: web.Request) -> web.Response:
    form = await request.post()
    name = form.get("name")
    expires_in = form.get("expires_in")
    name = name if isinstance(name, str) else ""
    expires_in = expires_in if isinstance(expires_in, str) and expires_in in dict(
        EXPIRY_CHOICES) else DEFAULT_EXPIRES_IN
    try:
        created = await create_token(request.config_dict[TOKENS], _user(request), name,
                                     expires_in)
    except GatewayError as exc:
        return await _tokens_page(request, error=exc, name=name, expires_in=expires_in,
                                  status=exc.status)
    return await _tokens_page(request, created=created, status=201)


@routes.post("/ui/tokens/{id}/revoke")
async def revoke(request: web.Request) -> web.Response:
    await request.config_dict[TOKENS].revoke(request.match_info["id"], _user(request))
    return see_other("/ui/tokens?done=revoked")
