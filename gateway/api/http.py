"""What every handler shares: the caller, the JSON body, JSON answers, and the error mapping."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from gateway.api.keys import AUTH, CONFIG, USER
from gateway.directory.people import Person
from gateway.errors import (
    BadRequest,
    GatewayError,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
)

log = logging.getLogger("gateway.api")
# The API describes itself to anyone: a client generator or a newcomer reads it before
# holding a token, and the document holds no secret.
PUBLIC_PATHS = frozenset({"/healthz", "/openapi.json"})
# /metrics takes the metrics token as well as an admin's: it checks the caller itself
# (gateway.api.metrics).
OWN_TOKEN_PATHS = PUBLIC_PATHS | {"/metrics"}
# The web inbox (gateway.ui) knows its visitors by their session cookie, not a bearer token.
OWN_SIGN_IN = ("/ui", "/ui/")
# SCIM (gateway.api.scim) takes its own token and no other, and answers SCIM error documents.
SCIM_PREFIX = "/scim/v2"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


JSON_TYPE = "application/json; charset=utf-8"


def answer(value: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(value), status=status,
                        headers={"Content-Type": JSON_TYPE})


def error_answer(error: GatewayError) -> web.Response:
    response = answer(error.to_json(), status=error.status)
    if error.status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="gateway"'
    return response


def user_of(request: web.Request) -> Person:
    return request[USER]


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


async def read_json(request: web.Request) -> Any:
    """The body as JSON: 415 unless application/json, 413 past the limit, 400 if malformed."""
    if request.content_type != "application/json":
        raise UnsupportedMediaType("send the body as application/json")
    limit = request.app[CONFIG].server.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"the body is larger than {limit} bytes", limit=limit)
    raw = await request.read()
    try:
        return orjson.loads(raw)  # strict JSON, 8x faster than json.loads on our bodies
    except orjson.JSONDecodeError:
        pass  # what orjson refuses, json may still read: lone surrogates, huge integers
    try:
        text = raw.decode("utf-8")
        return json.loads(text, parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise BadRequest("the body is not valid UTF-8 JSON", code="invalid-json") from None


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure leaves as the error shape of SPEC §9; never a stack trace."""
    try:
        if request.path not in OWN_TOKEN_PATHS and not (
                request.path == OWN_SIGN_IN[0] or request.path.startswith(OWN_SIGN_IN[1])
                or request.path == SCIM_PREFIX or request.path.startswith(SCIM_PREFIX + "/")):
            request[USER] = await request.app[AUTH].user_for(
                request.headers.get("Authorization"))
        return await handler(request)
    except GatewayError as exc:
        return error_answer(exc)
    except web.HTTPRequestEntityTooLarge:
        limit = request.app[CONFIG].server.max_body_bytes
        return error_answer(PayloadTooLarge(f"the body is larger than {limit} bytes",
                                            limit=limit))
    except web.HTTPNotFound:
        return error_answer(NotFound("no such route", code="no-route"))
    except web.HTTPMethodNotAllowed as exc:
        response = error_answer(MethodNotAllowed(f"{request.method} is not allowed here",
                                                 allowed=sorted(exc.allowed_methods)))
        response.headers["Allow"] = ", ".join(sorted(exc.allowed_methods))
        return response
    except web.HTTPException as exc:
        code = exc.reason.lower().replace(" ", "-")
        error = GatewayError(exc.reason, code=code)
        error.status = exc.status
        return error_answer(error)
    except Exception:
        log.exception("unexpected error on %s %s", request.method, request.path)
        return error_answer(GatewayError("internal error; the gateway's log has the details"))
