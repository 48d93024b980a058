"""`create_app(config)`: the one place where the gateway is wired together."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator

from aiohttp import web

from gateway.api import access_requests, audit, catalog, deliveries, meta
from gateway.api.http import errors_middleware
from gateway.api.keys import (
    AUTH,
    CATALOG,
    CONFIG,
    DATABASE,
    DISPATCHER,
    LIFECYCLE,
    MAIL,
    OPENAPI,
    SCHEDULER,
    WEBHOOKS,
)
from gateway.auth import Authenticator
from gateway.catalog.changes import ITEM, POLICY, USE_CASE, CatalogChanges
from gateway.config import Config
from gateway.delivery.dispatcher import Dispatcher
from gateway.delivery.mail_client import MailClient
from gateway.delivery.outbox import Outbox
from gateway.delivery.webhook_client import WebhookClient
from gateway.errors import ConfigError, InvalidField
from gateway.hooks.mailhook import MailhookRenderer
from gateway.hooks.notifications import NotificationRenderer
from gateway.requests.operations import Lifecycle
from gateway.requests.scheduler import Scheduler
from gateway.store.database import Database
from gateway.store.schema import migrate

CONFIG_ACTOR = "config"


def upsert_configured_catalog(conn: sqlite3.Connection, config: Config,
                              changes: CatalogChanges) -> dict[str, int]:
    """Write the config's policies, use cases and items (in that order: items link policies)."""
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    for name, kind in (("policies", POLICY), ("use_cases", USE_CASE), ("items", ITEM)):
        for i, entry in enumerate(getattr(config, name)):
            try:
                outcome = changes.upsert(conn, kind, CONFIG_ACTOR, entry, f"{name}[{i}]")
            except InvalidField as exc:
                raise ConfigError(exc.message) from None
            except Exception as exc:  # a conflict such as a duplicate policy name
                message = getattr(exc, "message", str(exc))
                raise ConfigError(f"{name}[{i}]: {message}") from None
            counts[outcome] += 1
    return counts


async def _lifetime(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    database = app[DATABASE]
    await asyncio.get_running_loop().run_in_executor(None, database.open, migrate)
    try:
        await database.write_long(upsert_configured_catalog, config, app[CATALOG])
        await app[WEBHOOKS].start()
        await app[DISPATCHER].start()
        task = asyncio.create_task(app[SCHEDULER].run(), name="scheduler")
        yield
        # SIGTERM: aiohttp has stopped taking requests; drain the attempts under way.
        await app[DISPATCHER].shutdown(config.delivery.shutdown_grace_s)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    finally:
        await app[WEBHOOKS].close()
        await app[MAIL].close()
        await database.close()


def create_app(config: Config) -> web.Application:
    app = web.Application(client_max_size=config.server.max_body_bytes,
                          middlewares=[errors_middleware])
    database = Database(config.store.path, config.store.synchronous)
    webhooks = WebhookClient(config.webhook, config.delivery.concurrency)
    mail = MailClient(config.mail)
    notifier = NotificationRenderer(config.mail.subject_prefix)
    dispatcher = Dispatcher(database, webhooks, mail, config.delivery.concurrency, notifier)
    outbox = Outbox(config.mail, MailhookRenderer(), notifier,
                    users=[u.email for u in config.users], on_queued=dispatcher.poke)
    lifecycle = Lifecycle(pending_ttl=config.requests.pending_ttl, listeners=(outbox,),
                          expiring=outbox.expiring)
    app[CONFIG] = config
    app[DATABASE] = database
    app[LIFECYCLE] = lifecycle
    app[CATALOG] = CatalogChanges(webhook=config.webhook)
    app[AUTH] = Authenticator(config.users)
    app[SCHEDULER] = Scheduler(database, lifecycle)
    app[DISPATCHER] = dispatcher
    app[WEBHOOKS] = webhooks
    app[MAIL] = mail
    app[OPENAPI] = meta.load_openapi()
    app.cleanup_ctx.append(_lifetime)
    app.router.add_routes(meta.routes)
    app.router.add_routes(access_requests.routes)
    app.router.add_routes(audit.routes)
    app.router.add_routes(deliveries.routes)
    catalog.add_routes(app)
    return app
