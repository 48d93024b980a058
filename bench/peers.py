"""The delivery benchmark's receivers, in a process of their own: an HTTP receiver and an SMTP
sink (aiosmtpd). Each records when a delivery arrived and the transition time it carries;
`GET /stats` returns them and `POST /reset` forgets them.

    python bench/peers.py HTTP_PORT SMTP_PORT
"""

from __future__ import annotations

import asyncio
import re
import sys
import time
from datetime import datetime
from typing import Any

import orjson
from aiohttp import web
from aiosmtpd.controller import Controller

STAMP = re.compile(rb"<timestamp>([^<]+)</timestamp>")
arrivals: dict[str, list[tuple[float, float]]] = {"webhook": [], "email": []}


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


class Sink:
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        now = time.time()
        match = STAMP.search(envelope.original_content or envelope.content)
        arrivals["email"].append((now, _epoch(match.group(1).decode()) if match else now))
        return "250 OK"


async def hook(request: web.Request) -> web.Response:
    body = await request.read()
    now = time.time()
    try:
        stamp = _epoch(orjson.loads(body)["timestamp"])
    except (ValueError, KeyError, TypeError):
        stamp = now  # the baseline's bodies carry no transition time
    arrivals["webhook"].append((now, stamp))
    return web.json_response({"message": "Success"})


async def stats(request: web.Request) -> web.Response:
    return web.Response(body=orjson.dumps(arrivals), content_type="application/json")


async def reset(request: web.Request) -> web.Response:
    for values in arrivals.values():
        values.clear()
    return web.json_response({"ok": True})


def main() -> None:
    http_port, smtp_port = int(sys.argv[1]), int(sys.argv[2])
    controller = Controller(Sink(), hostname="127.0.0.1", port=smtp_port)
    controller.start()
    app = web.Application()
    app.router.add_post("/hook", hook)
    app.router.add_get("/stats", stats)
    app.router.add_post("/reset", reset)
    app.router.add_get("/healthz", stats)
    try:
        web.run_app(app, host="127.0.0.1", port=http_port, print=None, access_log=None,
                    loop=asyncio.new_event_loop())
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
