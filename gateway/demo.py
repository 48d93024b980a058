"""`gateway demo`: the gateway with somewhere to deliver to, on a throwaway database.

One process runs three things on loopback: the gateway on a configuration (the packaged
example by default), a webhook receiver that checks every delivery's signature with
`gateway.signing.verify` (as `gateway verify` does), and an SMTP sink. Each arrival is one
line on stdout, so that a newcomer sees what a receiver or a ticketing tool would get.
The configuration's store, mail server and webhook destinations are replaced by the demo's
own; the database lives in a temporary directory removed at exit. Ctrl-C stops everything.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
import tempfile
from email import message_from_bytes
from email import policy as email_policy
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from aiohttp import web

from gateway.config import Config, parse_config
from gateway.errors import ConfigError
from gateway.signing import verify

_PACKAGE = Path(__file__).resolve().parent
EXAMPLE = "config.example.yaml"
EXIT_CONFIG = 2


def example_config() -> Path:
    """The example configuration: inside the package when installed from a wheel, at the
    top of the repository in a checkout."""
    for candidate in (_PACKAGE / EXAMPLE, _PACKAGE.parent / EXAMPLE):
        if candidate.is_file():
            return candidate
    raise ConfigError(f"{EXAMPLE} is missing from the installation: give --config")


def demo_config(raw: Any, *, base_dir: Path, database: Path, port: int, webhook_port: int,
                smtp_port: int) -> tuple[Config, dict[str, list[str]]]:
    """The configuration with the demo's store, mail server and webhook receiver in it, and
    the webhook secrets the receiver expects, by path."""
    data = dict(raw) if isinstance(raw, dict) else {}
    server = dict(data.get("server") or {})
    server.update(host="127.0.0.1", port=port)
    data["server"] = server
    data["store"] = {"path": str(database)}
    mail = dict(data.get("mail") or {})
    mail.update(host="127.0.0.1", port=smtp_port, security="none", username=None,
                password_env=None)
    data["mail"] = mail
    webhook = dict(data.get("webhook") or {})
    webhook.update(allow_http=True, allow_private_networks=True)  # the receiver is on loopback
    data["webhook"] = webhook
    secrets: dict[str, list[str]] = {}
    policies = []
    for entry in data.get("policies") or []:
        hook = entry.get("hook") if isinstance(entry, dict) else None
        if isinstance(hook, dict) and hook.get("type") == "webhook":
            path = urlsplit(str(hook.get("url") or "")).path or "/access"
            secrets.setdefault(path, []).append(str(hook.get("secret") or ""))
            entry = {**entry, "hook": {**hook, "url": f"http://127.0.0.1:{webhook_port}{path}"}}
        policies.append(entry)
    data["policies"] = policies
    return parse_config(data, base_dir=base_dir), secrets


def receiver(secrets: dict[str, list[str]], say: Any) -> web.Application:
    """Answers 200 to a delivery whose signature holds with one of its path's secrets, 401
    otherwise; either way one line says what arrived."""

    async def arrive(request: web.Request) -> web.Response:
        body = await request.read()  # the raw bytes, exactly as signed
        stamp = request.headers.get("X-TIMESTAMP", "")
        signature = request.headers.get("X-HUB-SIGNATURE-256", "")
        good = any(verify(secret, stamp, body, signature)
                   for secret in secrets.get(request.path, []))
        try:
            event = json.loads(body)
            what = f"#{event['accessRequestKey']} {event['status']}"
        except (ValueError, KeyError, TypeError):
            what = "(not a gateway payload)"
        say(f"webhook {what} signature {'ok' if good else 'BAD'}"
            f"  [{request.headers.get('X-EVENT', '?')}, delivery "
            f"{request.headers.get('X-DELIVERY-ID', '?')}]")
        if not good:
            return web.json_response({"message": "bad signature"}, status=401)
        return web.json_response({"message": "Success"})

    app = web.Application()
    app.router.add_post("/{tail:.*}", arrive)
    return app


class MailSink:
    """An aiosmtpd handler that accepts every message and says who it is for."""

    def __init__(self, say: Any) -> None:
        self.say = say

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.original_content or envelope.content,
                                     policy=email_policy.default)
        # A notification for people has a plain-text and an HTML part; a mailhook's body is
        # the XML document alone (or, for ServiceNow, with it attached).
        if message.get_content_type() == "multipart/alternative":
            kind = "mail"
        else:
            kind = (f"mailhook #{message.get('X-Access-Request-Key', '?')} "
                    f"{message.get('X-Access-Request-Status', '?')}")
        self.say(f"{kind} to {', '.join(envelope.rcpt_tos)} subject {message['Subject']!r}")
        return "250 Message accepted for delivery"


async def run(config: Config, secrets: dict[str, list[str]], *, webhook_port: int,
              smtp_port: int, database: Path) -> None:
    from aiosmtpd.smtp import SMTP

    from gateway.app import create_app

    def say(line: str) -> None:
        print(line, flush=True)

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    sink = MailSink(say)
    smtp = await loop.create_server(lambda: SMTP(sink, hostname="localhost"), "127.0.0.1",
                                    smtp_port)
    hooks = web.AppRunner(receiver(secrets, say), access_log=None)
    gateway = web.AppRunner(create_app(config), access_log=None)
    try:
        await hooks.setup()
        await web.TCPSite(hooks, "127.0.0.1", webhook_port).start()
        await gateway.setup()  # opens the store and starts the dispatcher
        await web.TCPSite(gateway, config.server.host, config.server.port).start()
        say(f"gateway on http://{config.server.host}:{config.server.port}/ "
            f"(web inbox: /ui/), database {database} (removed at exit)")
        say(f"webhook receiver on http://127.0.0.1:{webhook_port}/, SMTP sink on "
            f"127.0.0.1:{smtp_port}; each arrival is printed below. Ctrl-C stops all.")
        await stop.wait()
    finally:
        await gateway.cleanup()  # lets attempts under way finish, as on SIGTERM
        await hooks.cleanup()
        smtp.close()
        await smtp.wait_closed()


def main(*, config_path: str | None, port: int, webhook_port: int, smtp_port: int) -> int:
    try:
        import aiosmtpd  # noqa: F401
    except ImportError:
        print("gateway demo: needs aiosmtpd for its SMTP sink: "
              "pip install 'access-request-gateway[demo]' (or pip install aiosmtpd)",
              file=sys.stderr)
        return EXIT_CONFIG
    path = Path(config_path) if config_path else example_config()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read the configuration ({exc})") from None
    logging.basicConfig(level=logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with tempfile.TemporaryDirectory(prefix="gateway-demo-") as folder:
        database = Path(folder) / "gateway.db"
        config, secrets = demo_config(raw, base_dir=path.resolve().parent, database=database,
                                      port=port, webhook_port=webhook_port,
                                      smtp_port=smtp_port)
        try:
            asyncio.run(run(config, secrets, webhook_port=webhook_port, smtp_port=smtp_port,
                            database=database))
        except OSError as exc:
            print(f"gateway demo: cannot listen ({exc.strerror or exc}): choose other ports "
                  "with --port, --webhook-port, --smtp-port", file=sys.stderr)
            return EXIT_CONFIG
    return 0
