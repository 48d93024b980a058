"""Typed keys for what `create_app` puts on the application."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from gateway.api.scim import ScimEndpoint
    from gateway.auth import Authenticator
    from gateway.catalog.changes import CatalogChanges
    from gateway.config import Config
    from gateway.delivery.dispatcher import Dispatcher
    from gateway.delivery.leases import Leases
    from gateway.delivery.mail_client import MailClient
    from gateway.delivery.webhook_client import WebhookClient
    from gateway.directory.people import Person
    from gateway.directory.service import Directory
    from gateway.directory.tokens import Tokens
    from gateway.metrics import Metrics
    from gateway.requests.operations import Lifecycle
    from gateway.requests.scheduler import Scheduler
    from gateway.store.database import Database

CONFIG: web.AppKey[Config] = web.AppKey("config")
DATABASE: web.AppKey[Database] = web.AppKey("database")
LIFECYCLE: web.AppKey[Lifecycle] = web.AppKey("lifecycle")
CATALOG: web.AppKey[CatalogChanges] = web.AppKey("catalog")
AUTH: web.AppKey[Authenticator] = web.AppKey("auth")
SCHEDULER: web.AppKey[Scheduler] = web.AppKey("scheduler")
DISPATCHER: web.AppKey[Dispatcher] = web.AppKey("dispatcher")
WEBHOOKS: web.AppKey[WebhookClient] = web.AppKey("webhooks")
MAIL: web.AppKey[MailClient] = web.AppKey("mail")
LEASES: web.AppKey[Leases] = web.AppKey("leases")
MIGRATE: web.AppKey[Callable[[Any], Any]] = web.AppKey("migrate")
USER: web.RequestKey[Person] = web.RequestKey("user")
OPENAPI: web.AppKey[dict[str, Any]] = web.AppKey("openapi")
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
DIRECTORY: web.AppKey[Directory] = web.AppKey("directory")
TOKENS: web.AppKey[Tokens] = web.AppKey("tokens")
SCIM: web.AppKey[ScimEndpoint | None] = web.AppKey("scim")
