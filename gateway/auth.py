"""Bearer tokens: a token names a person by the SHA-256 of the token, compared in constant
time; the person is then read from the directory, so that one who was deactivated or
deleted is refused at once, on every instance.

Only digests are kept in memory, so neither a plain token nor a comparison that leaks
timing about it exists past start-up. The configuration's tokens stay in the configuration.
"""

from __future__ import annotations

import hashlib
import hmac

from gateway.config import User
from gateway.directory.people import Person, normalise_email
from gateway.directory.service import Directory
from gateway.errors import Unauthorized


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


class Authenticator:
    def __init__(self, users: tuple[User, ...], directory: Directory) -> None:
        self._by_digest = {bytes.fromhex(u.token_sha256): normalise_email(u.email)
                           for u in users}
        self._digest_of = {email: digest for digest, email in self._by_digest.items()}
        self._directory = directory

    def email_for_token(self, token: str) -> str | None:
        """The address a token names, or None; every digest is compared (constant time)."""
        digest = token_digest(token)
        found = None
        for known, email in self._by_digest.items():
            if hmac.compare_digest(known, digest):
                found = email
        return found

    def holds_token(self, email: str, token_sha256: str) -> bool:
        """Whether `email` still has the token whose hex digest is given (a session opened
        with a token ends when the configuration takes the token away)."""
        digest = self._digest_of.get(normalise_email(email))
        return digest is not None and hmac.compare_digest(digest.hex(), token_sha256)

    async def person_for_token(self, token: str) -> Person:
        email = self.email_for_token(token)
        if email is None:
            raise Unauthorized("unknown or revoked token")
        person = await self._directory.active_person(email)
        if person is None:
            raise Unauthorized("the user of this token is not active")
        return person

    async def user_for(self, header: str | None) -> Person:
        if not header:
            raise Unauthorized("send Authorization: Bearer <token>")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("send Authorization: Bearer <token>")
        return await self.person_for_token(token)
