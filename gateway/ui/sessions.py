"""Who is at the browser: a sign-in (a token exchanged for a session cookie) or, behind an
SSO proxy, the header the proxy sets (`ui.trusted_header`, believed only from
`ui.trusted_proxies`).

Sessions live in the store (any instance behind a load balancer knows them), as the SHA-256
of their id, with the digest of the token that opened them: a token revoked in the
configuration ends its sessions too, and every request reads the person from the directory:
the sessions of a person deactivated or deleted end at once, on every instance. The CSRF
token of a session is derived from its id, so it needs no storage and a token of one
session is worth nothing with another's cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from dataclasses import dataclass

from aiohttp import web

from gateway.auth import Authenticator, token_digest
from gateway.config import Config
from gateway.directory.people import Person
from gateway.directory.service import Directory
from gateway.errors import Unauthorized
from gateway.store import sessions as session_store
from gateway.store.database import Database
from gateway.timeutil import format_time, now_text, utcnow

SESSION_COOKIE = "gw_session"
VISITOR_COOKIE = "gw_visitor"  # CSRF token of a browser without a session (sign-in form)
COOKIE_PATH = "/ui"


@dataclass(frozen=True)
class Visitor:
    user: Person | None
    csrf: str
    via: str  # session | header | none
    session_id: str | None = None
    new_visitor_cookie: bool = False  # the CSRF cookie is to be set on the answer


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def session_csrf(session_id: str) -> str:
    return hmac.new(session_id.encode(), b"csrf", hashlib.sha256).hexdigest()


class Sessions:
    def __init__(self, config: Config, database: Database, auth: Authenticator,
                 directory: Directory) -> None:
        self._database = database
        self._auth = auth
        self._directory = directory
        self._ttl = config.ui.session_ttl
        self._secure = not config.server.allow_insecure_cookies
        self._header = config.ui.trusted_header
        self._proxies = config.ui.trusted_proxies

    def _from_proxy(self, request: web.Request) -> bool:
        if not self._proxies or request.remote is None:
            return False
        try:
            address = ipaddress.ip_address(request.remote)
        except ValueError:  # a unix socket
            return False
        return any(address in network for network in self._proxies)

    async def visitor(self, request: web.Request) -> Visitor:
        """The user of this request, if any, and the CSRF token its forms carry."""
        visitor_token = request.cookies.get(VISITOR_COOKIE, "")
        fresh = len(visitor_token) != 43
        if fresh:
            visitor_token = secrets.token_urlsafe(32)
        if self._header and self._header in request.headers and self._from_proxy(request):
            email = request.headers[self._header].strip().lower()
            user = await self._directory.active_person(email) if email else None
            if user is None:
                raise Unauthorized(f"{email or 'the signed-in person'} is not a user of this "
                                   "gateway (or no longer active): ask an admin to add them")
            return Visitor(user, visitor_token, "header", new_visitor_cookie=fresh)
        session_id = request.cookies.get(SESSION_COOKIE)
        if session_id:
            found = await self._database.read(session_store.get, _digest(session_id),
                                              now_text())
            if found is not None and self._auth.holds_token(found["email"],
                                                            found["tokenSha256"]):
                user = await self._directory.active_person(found["email"])
                if user is not None:
                    return Visitor(user, session_csrf(session_id), "session", session_id)
        return Visitor(None, visitor_token, "none", new_visitor_cookie=fresh)

    async def sign_in(self, token: str) -> tuple[Person, str]:
        """The user of `token` and a new session id (Unauthorized for an unknown token or
        an inactive user)."""
        user = await self._auth.person_for_token(token)
        session_id = secrets.token_urlsafe(32)
        now = utcnow()
        await self._database.write(session_store.insert, id_sha256=_digest(session_id),
                                   email=user.email,
                                   token_sha256=token_digest(token).hex(),
                                   created_at=format_time(now),
                                   expires_at=format_time(now + self._ttl))
        return user, session_id

    async def sign_out(self, session_id: str) -> None:
        await self._database.write(session_store.delete, _digest(session_id))

    def set_cookie(self, response: web.StreamResponse, name: str, value: str,
                   max_age: int | None = None) -> None:
        response.set_cookie(name, value, path=COOKIE_PATH, httponly=True, samesite="Strict",
                            secure=self._secure, max_age=max_age)

    def open_session(self, response: web.StreamResponse, session_id: str) -> None:
        self.set_cookie(response, SESSION_COOKIE, session_id,
                        max_age=int(self._ttl.total_seconds()))

    def close_session(self, response: web.StreamResponse) -> None:
        response.del_cookie(SESSION_COOKIE, path=COOKIE_PATH, secure=self._secure,
                            httponly=True, samesite="Strict")
