"""`/healthz` and `/openapi.json` (schemas/openapi.yaml): neither needs a token."""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import yaml
from aiohttp import web

from gateway import __version__
from gateway.api.http import answer
from gateway.api.keys import DATABASE, OPENAPI
from gateway.errors import StoreUnavailable
from gateway.resources import resource_dir

routes = web.RouteTableDef()
PING_TIMEOUT_S = 2.0


@functools.cache
def load_openapi() -> dict[str, Any]:
    """Parsed once per process (PyYAML takes ~0.1 s on it); treat the result as read-only."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    text = (resource_dir("schemas") / "openapi.yaml").read_text("utf-8")
    document = yaml.load(text, Loader=loader)  # a safe loader: C or Python
    document["info"]["version"] = __version__
    return document


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    """200 while the database answers, 503 (the error shape of SPEC §9) while it does not:
    a load balancer sends no request to an instance that could not serve it."""
    try:
        async with asyncio.timeout(PING_TIMEOUT_S):  # not wait_for: see Dispatcher._run
            await request.app[DATABASE].ping()
    except (StoreUnavailable, TimeoutError):
        raise StoreUnavailable("the database cannot be reached", code="store-unavailable",
                               version=__version__) from None
    return answer({"status": "ok", "version": __version__})


@routes.get("/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return answer(request.app[OPENAPI])
