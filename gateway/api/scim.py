"""`/scim/v2/…` (SPEC §14): SCIM 2.0 provisioning by an IdP such as Okta or Entra ID.

Only the token named by `directory.scim.token_env` opens these routes, and it opens nothing
else: the API's tokens are refused here, and the API does not know this one. Every answer
is `application/scim+json`; every failure a SCIM error document (RFC 7644 §3.12), never the
API's error shape and never a stack trace.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from typing import Any

import orjson
from aiohttp import web
from scim2_models import (
    Error,
    PayloadTooLargeException,
    SCIMException,
    UnauthorizedException,
)
from scim2_server.handler import AsyncScimHandler
from scim2_server.requests import ScimRequest
from scim2_server.responses import SCIM_MEDIA_TYPE

from gateway.api.http import SCIM_PREFIX as PREFIX
from gateway.api.keys import CONFIG, SCIM
from gateway.config import DirectoryConfig
from gateway.directory.scim import quirks
from gateway.directory.scim.provider import GatewayScimService, build_service
from gateway.directory.scim.storage import DirectoryStorage, FlagGroups
from gateway.directory.service import Directory
from gateway.errors import GatewayError
from gateway.store.database import Database

log = logging.getLogger("gateway.scim")
routes = web.RouteTableDef()


class ScimEndpoint:
    """The SCIM service with its storage, and the digest of the one token it accepts."""

    def __init__(self, token: str, service: GatewayScimService,
                 handler: AsyncScimHandler) -> None:
        self._digest = hashlib.sha256(token.encode("utf-8")).digest()
        self.service = service
        self.handler = handler

    def authentic(self, header: str | None) -> bool:
        """Whether `Authorization` carries the SCIM token (digests: equal lengths, constant
        time)."""
        scheme, _, given = (header or "").partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            return False
        digest = hashlib.sha256(given.strip().encode("utf-8", "surrogatepass")).digest()
        return hmac.compare_digest(self._digest, digest)


def endpoint_for(config: DirectoryConfig, directory: Directory,
                 database: Database) -> ScimEndpoint | None:
    """The SCIM endpoint the configuration asks for; None when `directory.scim.token_env`
    is not set (then /scim/v2/ answers 404)."""
    if config.scim_token is None:
        return None
    service = build_service()
    storage = DirectoryStorage(directory, database, service.provider,
                               FlagGroups(admin=config.scim_admin_group,
                                          integration=config.scim_integration_group))
    return ScimEndpoint(config.scim_token, service, AsyncScimHandler(service, storage))


def _answer(status: int, body: dict[str, Any] | None,
            headers: dict[str, str] | None = None) -> web.Response:
    sent = {k: v for k, v in (headers or {}).items() if k.lower() != "content-type"}
    if body is None:
        return web.Response(status=status, headers=sent)
    sent["Content-Type"] = SCIM_MEDIA_TYPE
    return web.Response(status=status, body=orjson.dumps(body), headers=sent)


def _error(exc: SCIMException) -> web.Response:
    response = _answer(exc.status, exc.to_error().model_dump())
    if exc.status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="gateway-scim"'
    return response


def _gateway_error(exc: GatewayError) -> web.Response:
    """A refusal of the directory's rules (409 for a person the configuration declares,
    400 for a bad value) as a SCIM error document."""
    scim_type = {400: "invalidValue", 409: "uniqueness" if exc.code == "user-exists"
                 else None}.get(exc.status)
    error = Error(status=exc.status, scim_type=scim_type, detail=exc.message)
    return _answer(exc.status, error.model_dump())


@routes.route("*", PREFIX + "{tail:(/.*)?}")
async def serve(request: web.Request) -> web.StreamResponse:
    endpoint = request.app[SCIM]
    if endpoint is None:
        return _answer(404, Error(status=404, detail="SCIM provisioning is not enabled "
                                  "(directory.scim.token_env)").model_dump())
    if not endpoint.authentic(request.headers.get("Authorization")):
        return _error(UnauthorizedException(detail="send Authorization: Bearer <the SCIM "
                                                   "token>"))
    limit = request.app[CONFIG].server.max_body_bytes
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return _error(PayloadTooLargeException(detail=f"the body is larger than {limit} "
                                                      "bytes"))
    if request.method in ("POST", "PUT", "PATCH") and body:
        body = quirks.normalize(body)
    scim_request = ScimRequest(
        method=request.method,
        base_url=str(request.url.origin()) + PREFIX,
        path=request.match_info.get("tail") or "/",
        query=dict(request.query),
        headers=list(request.headers.items()),
        body=body,
    )
    try:
        response = await endpoint.handler.handle(scim_request)
    except SCIMException as exc:
        return _error(exc)
    except GatewayError as exc:
        return _gateway_error(exc)
    except Exception:
        log.exception("unexpected error on SCIM %s %s", request.method, request.path)
        return _answer(500, Error(status=500, detail="internal error; the gateway's log "
                                  "has the details").model_dump())
    return _answer(int(response.status), response.body, response.headers)
