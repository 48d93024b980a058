"""`/healthz` (no token needed) and `/openapi.json` (the document in schemas/openapi.yaml)."""

from __future__ import annotations

from typing import Any

import yaml
from aiohttp import web

from gateway import __version__
from gateway.api.http import answer
from gateway.api.keys import OPENAPI
from gateway.resources import resource_dir

routes = web.RouteTableDef()


def load_openapi() -> dict[str, Any]:
    document = yaml.safe_load((resource_dir("schemas") / "openapi.yaml").read_text("utf-8"))
    document["info"]["version"] = __version__
    return document


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    return answer({"status": "ok", "version": __version__})


@routes.get("/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return answer(request.app[OPENAPI])
