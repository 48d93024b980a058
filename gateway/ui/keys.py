"""Typed keys for what `setup_ui` puts on the inbox's sub-application and its requests."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    import jinja2

    from gateway.directory.oidc import OidcClient
    from gateway.ui.sessions import Sessions, Visitor

TEMPLATES: web.AppKey[jinja2.Environment] = web.AppKey("ui-templates")
SESSIONS: web.AppKey[Sessions] = web.AppKey("ui-sessions")
VISITOR: web.RequestKey[Visitor] = web.RequestKey("ui-visitor")
OIDC: web.AppKey[OidcClient] = web.AppKey("ui-oidc")  # only with ui.oidc
