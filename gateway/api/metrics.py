"""`GET /metrics` (SPEC §13): the Prometheus text format, for admins or the metrics token."""

from __future__ import annotations

import hashlib
import hmac

from aiohttp import web

from gateway.api.keys import AUTH, CONFIG, DATABASE, METRICS
from gateway.metrics import CONTENT_TYPE
from gateway.requests import permissions
from gateway.store import deliveries as delivery_store
from gateway.store import requests as request_store

routes = web.RouteTableDef()


def _is_metrics_token(header: str | None, token: str | None) -> bool:
    """A scraper's token, compared in constant time (digests: equal lengths)."""
    if token is None or not header:
        return False
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer":
        return False
    expected = hashlib.sha256(token.encode("utf-8")).digest()
    got = hashlib.sha256(given.strip().encode("utf-8", "surrogatepass")).digest()
    return hmac.compare_digest(expected, got)


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    header = request.headers.get("Authorization")
    if not _is_metrics_token(header, request.app[CONFIG].metrics.token):
        permissions.check_admin(await request.app[AUTH].user_for(header))  # 401, then 403
    database = request.app[DATABASE]
    body = await request.app[METRICS].scrape(
        lambda: database.read(delivery_store.queued_count),
        lambda: database.read(request_store.count_without_recipient))
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})
