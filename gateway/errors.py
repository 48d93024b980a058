"""One exception hierarchy, mapped to the error shape of SPEC §9 by the API middleware.

Anything raised from here is safe to show a client: messages never carry secrets or
stack traces. Anything else that escapes a handler becomes a generic 500.
"""

from __future__ import annotations

from typing import Any


class GatewayError(Exception):
    status: int = 500
    code: str = "internal-error"

    def __init__(self, message: str, *, code: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details

    def to_json(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class BadRequest(GatewayError):
    status = 400
    code = "bad-request"


class InvalidField(BadRequest):
    """A body or query field is missing, of the wrong type or out of range; names the field."""

    code = "invalid-field"

    def __init__(self, field: str, message: str, **details: Any) -> None:
        super().__init__(f"{field}: {message}", field=field, **details)


class Unauthorized(GatewayError):
    status = 401
    code = "unauthorized"


class Forbidden(GatewayError):
    status = 403
    code = "forbidden"


class NotFound(GatewayError):
    status = 404
    code = "not-found"


class MethodNotAllowed(GatewayError):
    status = 405
    code = "method-not-allowed"


class Conflict(GatewayError):
    status = 409
    code = "conflict"


class PayloadTooLarge(GatewayError):
    status = 413
    code = "payload-too-large"


class UnsupportedMediaType(GatewayError):
    status = 415
    code = "unsupported-media-type"


class StoreUnavailable(GatewayError):
    """The database cannot be reached (PostgreSQL down or restarting): try again shortly."""

    status = 503
    code = "store-unavailable"


class ConfigError(Exception):
    """A configuration file that cannot be used; the message names the offending key."""
