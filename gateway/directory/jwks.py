"""The signing keys of an identity provider, fetched from its JWKS and kept.

A token signed with a key we have not seen yet (the IdP rotated its keys) makes us fetch the
set again, at most once per `min_refresh_s`, so that a stream of tokens with made-up key ids
cannot turn the gateway into a load generator against the IdP.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import Key, KeySet

__all__ = ["ALGORITHMS", "KeyCache", "UnknownKey", "reason", "verify_signature"]

# Asymmetric signatures only: never `none`, and never HS* (whose "key" would be the public key
# anyone can fetch from the JWKS).
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
              "ES256", "ES384", "ES512", "EdDSA", "Ed25519")
MAX_TOKEN_BYTES = 16384

Fetch = Callable[[str], Awaitable[Any]]


class UnknownKey(Exception):
    """No key of the issuer's set verifies this token (an unknown kid, or none at all)."""


class KeyCache:
    def __init__(self, jwks_uri: Callable[[], Awaitable[str]], fetch: Fetch, *,
                 max_age_s: float = 3600, min_refresh_s: float = 30,
                 clock: Callable[[], float] = time.time) -> None:
        self._jwks_uri = jwks_uri
        self._fetch = fetch
        self._max_age = max_age_s
        self._min_refresh = min_refresh_s
        self._clock = clock
        self._keys: KeySet | None = None
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()

    async def key_for(self, kid: str | None, alg: str) -> Key:
        """The key named by `kid` (or the only key, when the token names none)."""
        keys = await self._current()
        found = _pick(keys, kid, alg)
        if found is None and self._clock() - self._fetched_at >= self._min_refresh:
            keys = await self._refresh(stale=keys)
            found = _pick(keys, kid, alg)
        if found is None:
            raise UnknownKey(f"no signing key {kid!r} in the issuer's key set")
        return found

    async def _current(self) -> KeySet:
        if self._keys is None or self._clock() - self._fetched_at >= self._max_age:
            return await self._refresh(stale=self._keys)
        return self._keys

    async def _refresh(self, stale: KeySet | None) -> KeySet:
        async with self._lock:
            if self._keys is not stale and self._keys is not None:
                return self._keys  # another task fetched it while we waited
            document = await self._fetch(await self._jwks_uri())
            try:
                if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
                    raise ValueError("not a JWK Set")
                public = [k for k in document["keys"]
                          if isinstance(k, dict) and k.get("use", "sig") == "sig"]
                keys = KeySet.import_key_set({"keys": public})
            except (JoseError, ValueError, TypeError, KeyError) as exc:
                raise UnknownKey(f"the issuer's key set cannot be read ({exc})") from None
            if any(key.is_private for key in keys):
                raise UnknownKey("the issuer's key set holds private keys: refused")
            self._keys = keys
            self._fetched_at = self._clock()
            return keys


def _pick(keys: KeySet, kid: str | None, alg: str) -> Key | None:
    if kid is None:
        return keys.keys[0] if len(keys.keys) == 1 else None
    for key in keys:
        if key.kid == kid and key.get("alg") in (None, alg):
            return key
    return None


async def verify_signature(token: str, keys: KeyCache) -> jwt.Token:
    """The header and claims of a compact JWS whose signature one of the issuer's keys
    verifies; raises JoseError or UnknownKey otherwise. The claims are not checked here."""
    if len(token) > MAX_TOKEN_BYTES:
        raise UnknownKey("the token is too long")
    header = jws.extract_compact(token.encode("ascii", "replace")).headers()
    alg = header.get("alg")
    if alg not in ALGORITHMS:
        raise UnknownKey(f"the token's algorithm {alg!r} is not accepted")
    kid = header.get("kid")
    key = await keys.key_for(kid if isinstance(kid, str) else None, alg)
    return jwt.decode(token, key, algorithms=list(ALGORITHMS))


def reason(exc: Exception) -> str:
    """Why a token was refused, in joserfc's words (`expired_token`, `invalid_claim: aud`),
    never the token itself."""
    if isinstance(exc, UnknownKey):
        return str(exc)
    error = getattr(exc, "error", None) or type(exc).__name__
    description = getattr(exc, "description", None)
    return f"{error}: {description}" if description else str(error)
