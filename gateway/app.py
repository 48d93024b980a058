"""`create_app(config)`: the one place where the gateway is wired together."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web

from gateway.api import access_requests, audit, catalog, deliveries, meta, scim, tokens, users
from gateway.api import metrics as metrics_api
from gateway.api.http import errors_middleware
from gateway.api.keys import (
    AUTH,
    CATALOG,
    CONFIG,
    DATABASE,
    DIRECTORY,
    DISPATCHER,
    LEASES,
    LIFECYCLE,
    MAIL,
    METRICS,
    MIGRATE,
    OPENAPI,
    SCHEDULER,
    SCIM,
    TOKENS,
    WEBHOOKS,
)
from gateway.auth import Authenticator
from gateway.catalog.changes import ITEM, POLICY, USE_CASE, CatalogChanges
from gateway.config import Config
from gateway.delivery.dispatcher import Dispatcher
from gateway.delivery.leases import Leases
from gateway.delivery.mail_client import MailClient
from gateway.delivery.outbox import DELIVERIES_CHANNEL, Outbox
from gateway.delivery.webhook_client import WebhookClient
from gateway.directory.idp_http import IdpHttp
from gateway.directory.jwt_tokens import AccessTokens
from gateway.directory.oidc import OidcClient
from gateway.directory.service import Directory
from gateway.directory.tokens import Tokens
from gateway.errors import ConfigError, InvalidField, StoreUnavailable
from gateway.hooks.mailhook import MailhookRenderer
from gateway.hooks.notifications import NotificationRenderer
from gateway.metrics import Metrics
from gateway.requests.operations import Lifecycle
from gateway.requests.scheduler import Scheduler
from gateway.store.database import Database
from gateway.store.dialect import exclusively
from gateway.ui import setup_ui

CONFIG_ACTOR = "config"


def open_database(config: Config) -> tuple[Database, Callable[[Any], Any]]:
    """The backend that `store` names, and its migrations (not yet run)."""
    if config.store.url is not None:
        from gateway.store import pg_schema
        from gateway.store.postgresql import PostgresDatabase

        return (PostgresDatabase(config.store.url, config.store.password,
                                 config.store.pool_size), pg_schema.migrate)
    from gateway.store import schema
    from gateway.store.sqlite import SQLiteDatabase

    assert config.store.path is not None
    return SQLiteDatabase(config.store.path, config.store.synchronous), schema.migrate


def upsert_configured_catalog(conn: sqlite3.Connection, config: Config,
                              changes: CatalogChanges) -> dict[str, int]:
    """Write the config's policies, use cases and items (in that order: items link policies).
    Instances starting together take turns: each sees what the one before it wrote."""
    exclusively(conn, "configured-catalog")
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
    try:
        await asyncio.get_running_loop().run_in_executor(None, database.open, app[MIGRATE])
    except StoreUnavailable as exc:
        raise ConfigError(f"store.url: {exc.message}") from None
    try:
        await database.write_long(upsert_configured_catalog, config, app[CATALOG])
        await database.write_long(app[DIRECTORY].sync_configured, config.users)
        await database.start()
        await app[WEBHOOKS].start()
        await app[LEASES].start()
        await app[DISPATCHER].start()
        task = asyncio.create_task(app[SCHEDULER].run(), name="scheduler")
        yield
        # SIGTERM: aiohttp has stopped taking requests; drain the attempts under way.
        await app[DISPATCHER].shutdown(config.delivery.shutdown_grace_s)
        await app[LEASES].stop()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    finally:
        await app[WEBHOOKS].close()
        await app[MAIL].close()
        await database.close()


def create_app(config: Config) -> web.Application:
    metrics = Metrics()
    # Outermost: it counts the status the error middleware answered with.
    app = web.Application(client_max_size=config.server.max_body_bytes,
                          middlewares=[metrics.middleware, errors_middleware])
    database, migrate = open_database(config)
    webhooks = WebhookClient(config.webhook, config.delivery.concurrency)
    mail = MailClient(config.mail)
    notifier = NotificationRenderer(config.mail.subject_prefix)
    leases = Leases(database, config.delivery.lease_s)
    dispatcher = Dispatcher(database, webhooks, mail, config.delivery.concurrency, notifier,
                            instance=leases.instance)
    leases.on_lapsed = dispatcher.poke
    dispatcher.on_recorded = metrics.delivery_recorded
    database.listen(DELIVERIES_CHANNEL, dispatcher.poke)
    outbox = Outbox(config.mail, MailhookRenderer(), notifier,
                    users=[u.email for u in config.users], on_queued=dispatcher.poke,
                    on_failed=lambda channel, kind: metrics.recorded(channel, "failed", kind))
    lifecycle = Lifecycle(pending_ttl=config.requests.pending_ttl,
                          listeners=(outbox, metrics.transition),
                          expiring=outbox.expiring)
    app[CONFIG] = config
    app[DATABASE] = database
    app[MIGRATE] = migrate
    app[LEASES] = leases
    app[LIFECYCLE] = lifecycle
    app[CATALOG] = CatalogChanges(webhook=config.webhook)
    directory = Directory(database, lifecycle.listeners)
    app[DIRECTORY] = directory
    idp = IdpHttp()
    app.on_cleanup.append(lambda _: idp.close())
    access_tokens = AccessTokens(config.api.oidc, idp) if config.api.oidc else None
    app[TOKENS] = Tokens(database)
    app[AUTH] = Authenticator(config.users, directory, app[TOKENS], access_tokens)
    app[SCHEDULER] = Scheduler(database, lifecycle)
    app[DISPATCHER] = dispatcher
    app[WEBHOOKS] = webhooks
    app[MAIL] = mail
    app[OPENAPI] = meta.load_openapi()
    app[METRICS] = metrics
    app[SCIM] = scim.endpoint_for(config.directory, directory, database)
    app.cleanup_ctx.append(_lifetime)
    app.router.add_routes(meta.routes)
    app.router.add_routes(metrics_api.routes)
    app.router.add_routes(access_requests.routes)
    app.router.add_routes(audit.routes)
    app.router.add_routes(deliveries.routes)
    app.router.add_routes(tokens.routes)
    app.router.add_routes(users.routes)
    app.router.add_routes(scim.routes)
    catalog.add_routes(app)
    setup_ui(app, OidcClient(config.ui.oidc, idp) if config.ui.oidc else None)
    return app
