"""`/healthz` (no token needed) and `/openapi.json` (the document in schemas/openapi.yaml)."""

from __future__ import annotations

import functools
from typing import Any

import yaml
from aiohttp import web

from gateway import __version__
from gateway.api.http import answer
from gateway.api.keys import OPENAPI
from gateway.resources import resource_dir

routes = web.RouteTableDef()


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
    return answer({"status": "ok", "version": __version__})


@routes.get("/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return answer(request.app[OPENAPI])
