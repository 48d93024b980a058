"""Webhook signatures (SPEC §4): HMAC-SHA256 over `timestamp + body`, keyed by the secret.

`X-HUB-SIGNATURE-256` is the lowercase hex digest, no prefix; `X-TIMESTAMP` is Unix time in
whole seconds. Receivers use `verify` (or the `gateway verify` command), which compares in
constant time and refuses timestamps outside the tolerance, so that a captured delivery cannot
be replayed later.

Beside them, the Standard Webhooks headers (`webhook-id`, `webhook-timestamp`,
`webhook-signature`) that receivers built on that specification's libraries verify unchanged,
and secret rotation: for a while after a policy's secret changes, every delivery is signed with
the previous secret too, so that receivers can switch at their own pace. Pure functions with
an injectable clock: the end of a rotation window is tested without waiting for it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import time
from dataclasses import dataclass

DEFAULT_TOLERANCE_S = 300
STANDARD_PREFIX = "whsec_"
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")


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


def standard_key(secret: str) -> bytes:
    """The HMAC key of `webhook-signature`: a `whsec_<base64>` secret is decoded, as the
    Standard Webhooks specification says; any other secret is its UTF-8 bytes.

    A receiver built on those libraries (which always base64-decode) is given the same
    `whsec_` secret, or for any other secret the base64 of its UTF-8 bytes.
    """
    if secret.startswith(STANDARD_PREFIX):
        text = secret[len(STANDARD_PREFIX):]
        if _BASE64.fullmatch(text) and len(text.rstrip("=")) % 4 != 1:
            try:  # unpadded base64 is accepted, as the libraries accept it
                key = base64.b64decode(text.rstrip("=") + "==", validate=False)
            except binascii.Error:
                key = b""
            if key:
                return key
    return secret.encode("utf-8")


def standard_sign(secret: str, msg_id: str, timestamp: str | int, body: str | bytes) -> str:
    """One `v1,<base64>` entry: HMAC-SHA256 over `id.timestamp.body`."""
    message = f"{msg_id}.{timestamp}.".encode() + _bytes(body)
    digest = hmac.new(standard_key(secret), message, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


@dataclass(frozen=True)
class SigningKeys:
    """What a policy signs its deliveries with.

    `previous` (the secret a rotation replaced) signs too until `previous_until` (Unix
    time), in headers of its own; `standard` adds the Standard Webhooks headers.
    """

    secret: str
    previous: str | None = None
    previous_until: float | None = None
    standard: bool = False

    def previous_at(self, now: float) -> str | None:
        """The previous secret while its window lasts, else None."""
        if self.previous and self.previous_until is not None and now < self.previous_until:
            return self.previous
        return None


def signature_headers(keys: SigningKeys, *, delivery_id: str, body: bytes,
                      now: float | None = None) -> dict[str, str]:
    """Every header that carries the time or a signature, for one attempt made at `now`."""
    current = time.time() if now is None else now
    stamp = str(int(current))
    headers = {"X-TIMESTAMP": stamp, "X-HUB-SIGNATURE-256": sign(keys.secret, stamp, body)}
    previous = keys.previous_at(current)
    if previous is not None:
        headers["X-HUB-SIGNATURE-256-PREVIOUS"] = sign(previous, stamp, body)
    if keys.standard:
        entries = [standard_sign(keys.secret, delivery_id, stamp, body)]
        if previous is not None:
            entries.append(standard_sign(previous, delivery_id, stamp, body))
        headers.update({"webhook-id": delivery_id, "webhook-timestamp": stamp,
                        "webhook-signature": " ".join(entries)})
    return headers
