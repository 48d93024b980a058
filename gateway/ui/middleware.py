"""What every page shares: security headers, who the visitor is, CSRF on every form, and
errors as pages (the API's errors, in words) — never a stack trace."""

from __future__ import annotations

import hmac
import logging
from urllib.parse import urlencode

from aiohttp import web

from gateway.api.http import Handler
from gateway.errors import Forbidden, GatewayError, NotFound, Unauthorized
from gateway.ui.form_errors import explain
from gateway.ui.keys import SESSIONS, VISITOR
from gateway.ui.render import page, see_other
from gateway.ui.sessions import VISITOR_COOKIE, Visitor

log = logging.getLogger("gateway.ui")

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Opener-Policy": "same-origin",
}
PUBLIC = ("/ui/sign-in", "/ui/static/")
OIDC_PATHS = ("/ui/oidc/start", "/ui/oidc/callback")  # the way in with the identity provider
CSRF_FIELD = "csrf"
TITLES = {400: "That did not work", 401: "Sign in first", 403: "Not allowed",
          404: "Not found", 405: "Not allowed here", 409: "Not possible now",
          413: "Too large", 503: "Try again shortly"}


def _is_public(path: str) -> bool:
    return path == PUBLIC[0] or path.startswith(PUBLIC[1]) or path in OIDC_PATHS


class CsrfRefused(Forbidden):
    code = "csrf-refused"


async def check_csrf(request: web.Request, visitor: Visitor) -> None:
    """A form must carry the token of this visitor: another site cannot post as them."""
    form = await request.post()
    sent = form.get(CSRF_FIELD)
    if not isinstance(sent, str) or not hmac.compare_digest(sent, visitor.csrf):
        raise CsrfRefused("this form did not come from this site, or it has expired: "
                          "reload the page and send it again")


def error_page(request: web.Request, error: GatewayError) -> web.Response:
    return page(request, "error.html.j2", status=error.status,
                title=TITLES.get(error.status, "Something went wrong"), error=explain(error))


@web.middleware
async def ui_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    sessions = request.config_dict[SESSIONS]
    try:
        visitor = await sessions.visitor(request)
    except GatewayError as exc:  # a header user unknown here; the store unreachable
        request[VISITOR] = Visitor(None, "", "none")
        response: web.StreamResponse = error_page(request, exc)
    else:
        request[VISITOR] = visitor
        response = await _handle(request, handler, visitor)
        if visitor.new_visitor_cookie:
            sessions.set_cookie(response, VISITOR_COOKIE, visitor.csrf)
    response.headers.update(SECURITY_HEADERS)
    if not request.path.startswith(PUBLIC[1]):
        response.headers["Cache-Control"] = "no-store"  # pages show people's requests
    return response


async def _handle(request: web.Request, handler: Handler,
                  visitor: Visitor) -> web.StreamResponse:
    try:
        if request.path == "/ui":
            return see_other("/ui/")
        if request.method == "POST":
            await check_csrf(request, visitor)
        if visitor.user is None and not _is_public(request.path):
            if request.method == "GET":
                return see_other("/ui/sign-in?" + urlencode({"next": request.path_qs}))
            raise Unauthorized("your sign-in has ended: sign in again, then send the form again")
        return await handler(request)
    except GatewayError as exc:
        return error_page(request, exc)
    except web.HTTPException as exc:  # the router's own: no route, wrong method, too large
        if exc.status < 400:
            raise
        error = NotFound("there is no page here") if exc.status == 404 else \
            GatewayError(exc.reason)
        error.status = exc.status
        return error_page(request, error)
    except Exception:
        log.exception("unexpected error on %s %s", request.method, request.path)
        return error_page(request, GatewayError("something went wrong on our side; the "
                                                "gateway's log has the details"))
