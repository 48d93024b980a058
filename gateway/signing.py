"""Webhook signatures (SPEC §4): HMAC-SHA256 over `timestamp + body`, keyed by the secret.

`X-HUB-SIGNATURE-256` is the lowercase hex digest, no prefix; `X-TIMESTAMP` is Unix time in
whole seconds. Receivers use `verify` (or the `gateway verify` command), which compares in
constant time and refuses timestamps outside the tolerance, so that a captured delivery cannot
be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
import time

DEFAULT_TOLERANCE_S = 300


def _bytes(value: str | bytes) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else value


def sign(secret: str | bytes, timestamp: str | int, body: str | bytes) -> str:
    message = _bytes(str(timestamp)) + _bytes(body)
    return hmac.new(_bytes(secret), message, hashlib.sha256).hexdigest()


def verify(
    secret: str | bytes,
    timestamp: str | bytes | int,
    body: str | bytes,
    signature: str | bytes,
    *,
    tolerance: float = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> bool:
    """True when `signature` is the body's signature and `timestamp` is within tolerance."""
    stamp = timestamp.decode("ascii", "replace") if isinstance(timestamp, bytes) else str(timestamp)
    if not stamp.isdigit() or len(stamp) > 12:
        return False
    current = time.time() if now is None else now
    if abs(current - int(stamp)) > tolerance:
        return False
    expected = sign(secret, stamp, body)
    given = signature.decode("ascii", "replace") if isinstance(signature, bytes) else signature
    return hmac.compare_digest(expected, given.strip().lower())
