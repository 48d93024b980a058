"""The command line of SPEC §8 and §10: `gateway serve`, `check-config`, `verify`, `migrate`,
and `demo` (the gateway with a receiver and a mail sink that print what arrives).

A configuration that cannot be used stops the program with one line naming the key, and exit
code 2: no traceback, since the reader is an operator, not a developer.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from gateway import __version__
from gateway.errors import ConfigError

if TYPE_CHECKING:
    import asyncio

    from gateway.config import Config

EXIT_CONFIG = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateway", description="Access-request gateway")
    parser.add_argument("--version", action="version", version=f"gateway {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the gateway")
    serve.add_argument("--config", required=True, help="the YAML configuration file")
    serve.add_argument("--host", help="overrides server.host")
    serve.add_argument("--port", type=int, help="overrides server.port")
    serve.add_argument("--access-log", action="store_true",
                       help="log every HTTP request (costs ~12%% of throughput; mutations are "
                            "in the audit log either way)")
    check = commands.add_parser("check-config", help="check a configuration and exit")
    check.add_argument("config", help="the YAML configuration file")
    migrate = commands.add_parser(
        "migrate", help="create or migrate the database's schema and exit (as serve does "
                        "at start)")
    migrate.add_argument("--config", required=True, help="the YAML configuration file")
    verify = commands.add_parser(
        "verify", help="verify a webhook delivery's signature (the body comes on stdin)")
    verify.add_argument("--secret-env", required=True,
                        help="name of the environment variable holding the secret")
    verify.add_argument("--timestamp", required=True, help="the X-TIMESTAMP header")
    verify.add_argument("--signature", required=True, help="the X-HUB-SIGNATURE-256 header")
    verify.add_argument("--tolerance", type=float, default=300,
                        help="seconds of clock difference accepted (default 300)")
    demo = commands.add_parser(
        "demo", help="the gateway with a webhook receiver and an SMTP sink that print what "
                     "arrives, on a throwaway database (Ctrl-C stops all)")
    demo.add_argument("--config", help="the YAML configuration (default: the example); its "
                                       "store, mail server and webhook URLs are replaced")
    demo.add_argument("--port", type=int, default=8080, help="the gateway's (default 8080)")
    demo.add_argument("--webhook-port", type=int, default=9000,
                      help="the webhook receiver's (default 9000)")
    demo.add_argument("--smtp-port", type=int, default=1025,
                      help="the SMTP sink's (default 1025)")
    return parser


def _event_loop() -> asyncio.AbstractEventLoop:
    """uvloop where it is installed (Linux, macOS): measured 5-13% more requests per second."""
    import asyncio

    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


YOUNG_COLLECTION_AFTER = 10_000  # net new container objects; Python's default is 700


def _tune_gc() -> None:
    """Fewer garbage collections, none of them over what start-up made.

    Measured (the dispatcher draining 30,000 queued webhooks): with Python's default
    thresholds the collector ran 1,650 young and 14 full collections, 13-16% of the process's
    CPU, and each full one paused the event loop for ~50 ms. Most objects a delivery makes
    die of their reference counts within milliseconds; with a young generation of 10,000 they
    are gone before a collection looks at them: 7 collections in all, 22 ms. `gc.freeze()`
    moves what start-up made (modules, the app) out of every later collection's way.
    """
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_AFTER, middle, old)


def _serve(args: argparse.Namespace) -> int:
    from aiohttp import web

    from gateway.api.server import run
    from gateway.app import create_app
    from gateway.config import load_config

    config = load_config(args.config)
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    host = args.host or config.server.host
    port = config.server.port if args.port is None else args.port
    access = {"access_log_format": '%a "%r" %s %b %Tfs'} if args.access_log else \
        {"access_log": None}
    app = create_app(config)

    async def started(app: web.Application) -> None:
        # After the store opened (the lifetime context runs first): a store that cannot be
        # used stops the program with its one line, never after "serving".
        logging.getLogger("gateway").info("gateway %s serving on http://%s:%s", __version__,
                                          host, port)

    app.on_startup.append(started)
    _tune_gc()
    run(app, host=host, port=port, loop=_event_loop(), **access)
    return 0


def _check_config(args: argparse.Namespace) -> int:
    from gateway.app import upsert_configured_catalog
    from gateway.catalog.changes import CatalogChanges
    from gateway.config import load_config
    from gateway.store.schema import migrate

    config = load_config(args.config)
    import sqlite3

    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA foreign_keys = ON")
    migrate(conn)
    upsert_configured_catalog(conn, config, CatalogChanges(webhook=config.webhook))
    store = ""
    if config.store.url is not None:
        store = f", {_reach_postgres(config)}"
    print(f"{args.config}: OK ({len(config.users)} users, {len(config.policies)} policies, "
          f"{len(config.items)} items, {len(config.use_cases)} use cases{store})")
    return 0


def _reach_postgres(config: Config) -> str:
    """Connect once, as serve will: a wrong URL or password is found here, not at start."""
    from gateway.errors import StoreUnavailable
    from gateway.store import pg_schema
    from gateway.store.postgresql import connect, describe

    assert config.store.url is not None
    try:
        conn = connect(config.store.url, config.store.password)
    except StoreUnavailable as exc:
        raise ConfigError(f"store.url: {exc.message}") from None
    try:
        version = pg_schema.schema_version(conn)
    finally:
        conn.close()
    known = len(pg_schema.MIGRATIONS)
    if version > known:
        raise pg_schema.newer_schema("store.url", version, known)
    return f"PostgreSQL at {describe(config.store.url)} reached, schema version {version}"


def _migrate(args: argparse.Namespace) -> int:
    """What serve does first, alone: for deployments that migrate before they roll out."""
    from gateway.app import open_database
    from gateway.config import load_config
    from gateway.errors import StoreUnavailable

    config = load_config(args.config)
    database, migrate = open_database(config)
    key = "store.url" if config.store.url is not None else "store.path"
    try:
        database.open(migrate)
    except StoreUnavailable as exc:
        raise ConfigError(f"{key}: {exc.message}") from None
    database.close_now()
    print(f"{args.config}: schema at version {database.schema_version}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    """Exit 0 and print `valid` when the signature holds; exit 1 and say why otherwise."""
    from gateway.signing import verify

    secret = os.environ.get(args.secret_env)
    if not secret:
        print(f"gateway verify: environment variable {args.secret_env} is not set",
              file=sys.stderr)
        return EXIT_CONFIG
    body = sys.stdin.buffer.read()
    if verify(secret, args.timestamp, body, args.signature, tolerance=args.tolerance):
        print("valid")
        return 0
    if verify(secret, args.timestamp, body, args.signature, tolerance=float("inf")):
        age = abs(time.time() - int(args.timestamp))
        print(f"invalid: the signature matches, but the timestamp is {age:.0f} s from now, "
              f"outside the tolerance of {args.tolerance:g} s (for an older delivery, such "
              f"as one read from its record, raise it with --tolerance SECONDS)")
    else:
        print("invalid: signature does not match the body and timestamp")
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    from gateway import client

    words = sys.argv[1:] if argv is None else list(argv)
    if words and words[0] in client.VERBS:  # the API's client (SPEC §11): no server modules
        from gateway.client.main import main as client_main

        # The server's commands are handed down for `gateway completion`: the client
        # completes the whole program without importing this module.
        return client_main(words, server_parser=_parser)
    parser = _parser()
    parser.epilog = client.EPILOG
    args = parser.parse_args(argv)
    try:
        if args.command == "serve":
            return _serve(args)
        if args.command == "verify":
            return _verify(args)
        if args.command == "migrate":
            return _migrate(args)
        if args.command == "demo":
            from gateway.demo import main as demo

            return demo(config_path=args.config, port=args.port,
                        webhook_port=args.webhook_port, smtp_port=args.smtp_port)
        return _check_config(args)
    except ConfigError as exc:
        print(f"gateway: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130
