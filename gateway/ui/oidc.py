"""Sign-in with the identity provider (`ui.oidc`, SPEC §14): /ui/oidc/start and its callback.

The start form (a button on the sign-in page, CSRF-checked like every form) answers a page
that sends the browser on to the IdP: a redirect would break the pages' CSP, whose
`form-action 'self'` also covers where a form's answer redirects. The pending state, nonce
and PKCE verifier travel in a signed cookie named after the state, so that two tabs signing
in at once do not overwrite each other's. That cookie is `SameSite=Lax` and scoped to the
callback: the IdP's redirect back is a cross-site navigation, which a `Strict` cookie would
not follow. For the same reason the callback answers a page that moves on to the inbox
itself rather than a redirect: the session cookie is `Strict`, and a redirect chain that
began at the IdP would not carry it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging

from aiohttp import web

from gateway.api.keys import CONFIG, DIRECTORY
from gateway.directory.idp_http import IdentityProviderUnavailable
from gateway.directory.oidc import Identity, OidcClient, SignInRefused
from gateway.directory.people import Person, normalise_email
from gateway.errors import Conflict, NotFound
from gateway.ui.account import safe_next
from gateway.ui.keys import OIDC, SESSIONS
from gateway.ui.middleware import error_page
from gateway.ui.render import page

routes = web.RouteTableDef()
log = logging.getLogger("gateway.ui")

CALLBACK = "/ui/oidc/callback"
PENDING_COOKIE = "gw_oidc_"  # + the first 16 hex digits of the state's SHA-256
JIT_ACTOR = "oidc"


def _client(request: web.Request) -> OidcClient:
    client = request.config_dict.get(OIDC)
    if client is None:
        raise NotFound("sign-in with an identity provider is not configured here")
    return client


def redirect_uri(request: web.Request, client: OidcClient) -> str:
    """Where the IdP sends people back: configured, or this gateway's own callback."""
    return client.config.redirect_uri or str(request.url.origin()) + CALLBACK


def _cookie_name(state: str) -> str:
    return PENDING_COOKIE + hashlib.sha256(state.encode()).hexdigest()[:16]


@routes.post("/ui/oidc/start")
async def start(request: web.Request) -> web.Response:
    client = _client(request)
    form = await request.post()
    try:
        url, pending = await client.begin(redirect_uri(request, client),
                                          safe_next(form.get("next")))
    except IdentityProviderUnavailable as exc:
        log.warning("OIDC sign-in could not start: %s", exc.message)
        return error_page(request, exc)
    # A page that moves on, not a redirect: the sign-in page's CSP (`form-action 'self'`)
    # would block a form whose answer redirects to another site, the IdP.
    response = page(request, "oidc_continue.html.j2", title="Signing in", next=url,
                    leaving=True)
    secure = not request.config_dict[CONFIG].server.allow_insecure_cookies
    response.set_cookie(_cookie_name(pending.state), client.seal(pending), path=CALLBACK,
                        httponly=True, samesite="Lax", secure=secure, max_age=600)
    return response


@routes.get(CALLBACK)
async def callback(request: web.Request) -> web.Response:
    client = _client(request)
    state = request.query.get("state", "")
    cookie = _cookie_name(state)
    try:
        if not state:
            raise SignInRefused("the identity provider's answer carries no state: start again")
        pending = client.unseal(request.cookies.get(cookie), state)
        identity = await client.finish(request.query, pending, redirect_uri(request, client))
        person = await _person_for(request, identity)
    except (SignInRefused, IdentityProviderUnavailable) as exc:
        log.info("OIDC sign-in refused: %s", exc.message)
        response = page(request, "oidc_refused.html.j2", status=exc.status,
                        title="Not signed in", error=exc, admins=_admins(request))
        response.del_cookie(cookie, path=CALLBACK)
        return response
    sessions = request.config_dict[SESSIONS]
    session_id = await sessions.sign_in_oidc(person)
    response = page(request, "oidc_continue.html.j2", title="Signed in", next=pending.next)
    sessions.open_session(response, session_id)
    response.del_cookie(cookie, path=CALLBACK)
    return response


async def _person_for(request: web.Request, identity: Identity) -> Person:
    """The active person the IdP named; with `directory.jit`, created at their first sign-in
    (and, for people it created, teams kept in step with the groups claim)."""
    config = request.config_dict[CONFIG]
    directory = request.config_dict[DIRECTORY]
    email = normalise_email(identity.email)
    person = await directory.person(email)
    if person is not None and not person.active:
        raise _not_a_user(email, "an active user")
    if person is None:
        if not config.directory.jit:
            raise _not_a_user(email, "a user")
        try:
            person = await directory.create(
                Person(email=email, display_name=identity.display_name,
                       teams=identity.groups or (), source="oidc"), actor=JIT_ACTOR)
        except Conflict:  # created by a sign-in on another tab or instance meanwhile
            person = await directory.get(email)
            if person is None or not person.active:
                raise _not_a_user(email, "an active user") from None
        log.info("OIDC sign-in created %s (directory.jit)", email)
        return person
    if config.directory.jit and person.source == "oidc" and identity.groups is not None \
            and tuple(sorted(person.teams)) != identity.groups:
        person = await directory.save(dataclasses.replace(person, teams=identity.groups),
                                      actor=JIT_ACTOR, by="oidc")
    return person


def _not_a_user(email: str, what: str) -> SignInRefused:
    return SignInRefused(f"you signed in as {email}, who is not {what} of this gateway")


def _admins(request: web.Request) -> list[str]:
    """Whom to ask: the configuration's admins (the directory's may change, these are known
    to be there)."""
    return [u.email for u in request.config_dict[CONFIG].users if u.admin]
