"""Bearer tokens: users are found by the SHA-256 of the token, compared in constant time.

Only digests are kept in memory, so neither a plain token nor a comparison that leaks
timing about it exists past start-up.
"""

from __future__ import annotations

import hashlib
import hmac

from gateway.config import User
from gateway.errors import Unauthorized


class Authenticator:
    def __init__(self, users: tuple[User, ...]) -> None:
        self._by_digest = {bytes.fromhex(u.token_sha256): u for u in users}
        self._users = users

    def user_for(self, header: str | None) -> User:
        if not header:
            raise Unauthorized("send Authorization: Bearer <token>")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("send Authorization: Bearer <token>")
        digest = hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
        found = None
        for known, user in self._by_digest.items():
            if hmac.compare_digest(known, digest):
                found = user
        if found is None:
            raise Unauthorized("unknown or revoked token")
        return found
