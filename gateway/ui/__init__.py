"""The web inbox (SPEC §12): pages for people under `/ui/`, served by the gateway itself.

`setup_ui(app)` mounts them as a sub-application with its own middleware (sessions, CSRF,
security headers, errors as pages); its handlers reach the gateway's database, lifecycle and
dispatcher through `request.config_dict`, so they call exactly what the API calls.
"""

from __future__ import annotations

from aiohttp import web

from gateway.api.keys import AUTH, CONFIG, DATABASE, DIRECTORY
from gateway.errors import NotFound
from gateway.resources import resource_dir
from gateway.ui import account, admin, requests
from gateway.ui.keys import SESSIONS, TEMPLATES
from gateway.ui.middleware import error_page, ui_middleware
from gateway.ui.render import environment
from gateway.ui.sessions import Sessions

__all__ = ["setup_ui"]
PREFIX = "/ui"


async def _no_page(request: web.Request) -> web.Response:
    return error_page(request, NotFound("there is no page here"))


def setup_ui(app: web.Application) -> None:
    """Mount the inbox on `app`, once its CONFIG, DATABASE and AUTH are set."""
    ui = web.Application(middlewares=[ui_middleware],
                         client_max_size=app[CONFIG].server.max_body_bytes)
    ui[TEMPLATES] = environment()
    ui[SESSIONS] = Sessions(app[CONFIG], app[DATABASE], app[AUTH], app[DIRECTORY])
    ui.router.add_static("/static", resource_dir("templates") / "ui" / "static")
    for table in (account.routes, requests.routes, admin.routes):
        for route in table:
            assert isinstance(route, web.RouteDef)
            ui.router.add_route(route.method, route.path.removeprefix(PREFIX), route.handler)
    ui.router.add_route("*", "/{tail:.*}", _no_page)
    app.add_subapp(PREFIX, ui)
