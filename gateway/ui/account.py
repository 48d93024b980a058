"""Sign-in (a token for a session cookie) and sign-out."""

from __future__ import annotations

from aiohttp import web

from gateway.api.keys import CONFIG
from gateway.errors import Unauthorized
from gateway.ui.keys import SESSIONS, VISITOR
from gateway.ui.render import page, see_other

routes = web.RouteTableDef()


def safe_next(raw: object) -> str:
    """Where to go after signing in: a page of the inbox, never another site (no `//`, no
    backslash a browser reads as a slash, no dot segments, no control characters)."""
    if isinstance(raw, str) and raw.startswith("/ui/") and len(raw) <= 2000 \
            and "//" not in raw and "\\" not in raw and "/.." not in raw \
            and all(" " < c < "\x7f" for c in raw):
        return raw
    return "/ui/inbox"


def _oidc_button(request: web.Request) -> str | None:
    """The words of the identity provider's button, when ui.oidc is configured."""
    oidc = request.config_dict[CONFIG].ui.oidc
    return oidc.button if oidc is not None else None


@routes.get("/ui/sign-in")
async def sign_in_form(request: web.Request) -> web.Response:
    if request[VISITOR].user is not None:
        return see_other(safe_next(request.query.get("next")))
    return page(request, "sign_in.html.j2", title="Sign in",
                next=safe_next(request.query.get("next")),
                signed_out="signed-out" in request.query, oidc=_oidc_button(request))


@routes.post("/ui/sign-in")
async def sign_in(request: web.Request) -> web.Response:
    form = await request.post()
    token = form.get("token")
    target = safe_next(form.get("next"))
    sessions = request.config_dict[SESSIONS]
    try:
        if not isinstance(token, str) or not token.strip():
            raise Unauthorized("enter your token")
        _, session_id = await sessions.sign_in(token.strip())
    except Unauthorized as exc:
        message = "this token is unknown or revoked" if "unknown" in exc.message \
            else exc.message
        return page(request, "sign_in.html.j2", status=401, title="Sign in", next=target,
                    error=message, oidc=_oidc_button(request))
    response = see_other(target)
    sessions.open_session(response, session_id)
    return response


@routes.post("/ui/sign-out")
async def sign_out(request: web.Request) -> web.Response:
    sessions = request.config_dict[SESSIONS]
    visitor = request[VISITOR]
    if visitor.session_id is not None:
        await sessions.sign_out(visitor.session_id)
    response = see_other("/ui/sign-in?signed-out")
    sessions.close_session(response)
    return response
