"""Personal access tokens (SPEC §14): `gwpat_` + 43 characters of `secrets.token_urlsafe(32)`
(256 bits), shown once when created and kept only as their SHA-256.

`Tokens` is the facade the authenticator, the API and the pages use. A presented token is
looked up by its digest together with the directory's version, in one small read
(`Database.read_small`, as the directory's look-up of a caller): a look-up is
cached until the version moves (a revocation or any change of a person moves it), so a
request with a cached token costs the same single small read as one with a configuration
token, and a token revoked, or a person deactivated, on any instance is refused by every
instance at its next request. Expiry is checked against the clock on every use.

`lastUsedAt` is written at most once a minute per token and instance, by a write the
request does not wait for (it joins the next group commit): it is exact to the minute.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from gateway.directory.people import Person, normalise_email
from gateway.errors import Conflict, NotFound, Unauthorized
from gateway.store import audit
from gateway.store import tokens as store
from gateway.store.database import Database
from gateway.timeutil import format_time, parse_time, utcnow

log = logging.getLogger("gateway.directory.tokens")

PREFIX = "gwpat_"  # secret scanners (GitHub's, gitleaks) can be taught this prefix
DEFAULT_EXPIRES_IN = "P90D"
MAX_EXPIRES_IN = timedelta(days=366)
MAX_LIVE = 50  # tokens per person that are neither revoked nor expired
TOUCH_EVERY = timedelta(minutes=1)
CACHE_MAX = 10_000  # look-ups kept; a few MB at most
NAME_MAX = 100


@dataclass(frozen=True)
class ApiToken:
    id: str
    email: str
    name: str
    digest: str  # hex SHA-256 of the token
    created_at: str
    expires_at: str
    last_used_at: str | None = None
    revoked_at: str | None = None

    @functools.cached_property
    def expires(self) -> datetime:
        """`expires_at` parsed once per cached look-up, not once per request."""
        return parse_time(self.expires_at)

    @classmethod
    def of(cls, row: dict[str, Any]) -> ApiToken:
        return cls(**{k: v for k, v in row.items() if k != "seq"})

    def public(self) -> dict[str, Any]:
        """The API's document: never the token, never its digest."""
        return {"id": self.id, "name": self.name, "email": self.email,
                "createdAt": self.created_at, "expiresAt": self.expires_at,
                "lastUsedAt": self.last_used_at}


def looks_like_pat(token: str) -> bool:
    return token.startswith(PREFIX)


def digest_of(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _audit(conn: Any, actor: str, kind: str, token: ApiToken, at: str) -> None:
    audit.add(conn, at=at, actor=actor, type=kind, subject=f"user:{token.email}",
              after={"id": token.id, "name": token.name, "expiresAt": token.expires_at})


def _create(conn: Any, token: ApiToken) -> ApiToken:
    if store.count_live(conn, token.email, token.created_at) >= MAX_LIVE:
        raise Conflict(f"you have {MAX_LIVE} tokens that still work: revoke one first",
                       code="too-many-tokens", limit=MAX_LIVE)
    row = store.insert(conn, id=token.id, email=token.email, name=token.name,
                       digest=token.digest, created_at=token.created_at,
                       expires_at=token.expires_at)
    saved = ApiToken.of(row)
    _audit(conn, token.email, "token.created", saved, token.created_at)
    return saved


def _revoke(conn: Any, token_id: str, by: Person, at: str) -> ApiToken:
    row = store.get(conn, token_id)
    # Another person's token is "not found" to a non-admin: ids are not theirs to probe.
    if row is None or row["revoked_at"] is not None or not (
            by.admin or normalise_email(by.email) == row["email"]):
        raise NotFound("no such token", code="token-not-found")
    if not store.revoke(conn, token_id, at):  # another instance revoked it meanwhile
        raise NotFound("no such token", code="token-not-found")
    revoked = ApiToken.of({**row, "revoked_at": at})
    _audit(conn, by.email, "token.revoked", revoked, at)
    return revoked


def revoke_all(conn: Any, email: str, *, actor: str, at: str) -> list[str]:
    """Every token of `email` stops working (deprovisioning, in its transaction)."""
    revoked = [ApiToken.of(r) for r in store.revoke_all_of(conn, email, at)]
    for token in revoked:
        _audit(conn, actor, "token.revoked", token, at)
    return [t.id for t in revoked]


class Tokens:
    def __init__(self, database: Database, *,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self._database = database
        self.clock = clock  # injectable: tests move time instead of waiting
        self._version: int | None = None
        self._known: dict[str, tuple[ApiToken | None, Person | None]] = {}
        self._touched: dict[str, datetime] = {}  # token id -> last use written here
        self._writes: set[asyncio.Future[Any]] = set()

    # --- authentication ----------------------------------------------------------------

    async def _lookup(self, digest: str) -> tuple[ApiToken | None, Person | None]:
        known = self._version if digest in self._known else None
        version, changed, row, person = await self._database.read_small(
            store.lookup, digest, known)
        if not changed:
            if version == self._version and digest in self._known:
                return self._known[digest]
            # Another look-up moved the cache on meanwhile: read this one afresh.
            version, _, row, person = await self._database.read_small(
                store.lookup, digest, None)
        found = (None if row is None else ApiToken.of(row), person)
        if self._version is None or version > self._version:
            self._known.clear()
            self._version = version
        # Never cache what is older than the cache, nor a miss: random tokens sent by
        # anyone must not push out the look-ups of real ones.
        if version == self._version and row is not None:
            if len(self._known) >= CACHE_MAX:
                self._known.clear()
            self._known[digest] = found
        return found

    async def person_for(self, token: str) -> Person | None:
        """The active person a token names; None when no token has its digest (it may be a
        configuration token that happens to look like one); Unauthorized for a revoked or
        expired token, or one whose person is inactive or gone."""
        digest = digest_of(token)
        found, person = await self._lookup(digest)
        # The index found the row by its digest; the comparison that decides is this one.
        if found is None or not hmac.compare_digest(found.digest, digest):
            return None
        if found.revoked_at is not None:
            raise Unauthorized("unknown or revoked token")
        now = self.clock()
        if now >= found.expires:
            raise Unauthorized("this token has expired: create a new one")
        if person is None or not person.active:
            raise Unauthorized("the user of this token is not active")
        self._note_use(found, now)
        return person

    def _note_use(self, token: ApiToken, now: datetime) -> None:
        last = self._touched.get(token.id)
        if last is None and token.last_used_at is not None:
            last = parse_time(token.last_used_at)
        if last is not None and now - last < TOUCH_EVERY:
            return
        if len(self._touched) >= CACHE_MAX:
            self._touched.clear()
        self._touched[token.id] = now
        write = self._database.write(store.touch, token.id, format_time(now))
        self._writes.add(write)
        write.add_done_callback(self._written)

    def _written(self, write: asyncio.Future[Any]) -> None:
        self._writes.discard(write)
        if not write.cancelled() and write.exception() is not None:
            log.warning("could not record a token's last use: %s", write.exception())

    async def settle(self) -> None:
        """Wait for the last-use writes under way (tests, benchmarks)."""
        while self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)

    # --- the API's operations ----------------------------------------------------------

    async def create(self, person: Person, name: str,
                     expires_in: timedelta) -> tuple[ApiToken, str]:
        """A new token of `person`: the record and the token itself (shown once)."""
        secret = PREFIX + secrets.token_urlsafe(32)
        now = self.clock()
        token = ApiToken(id=secrets.token_hex(8), email=normalise_email(person.email),
                         name=name, digest=digest_of(secret), created_at=format_time(now),
                         expires_at=format_time(now + expires_in))
        saved = await self._database.write(_create, token)
        return saved, secret

    async def revoke(self, token_id: str, by: Person) -> ApiToken:
        """Revoke a token of `by` (admins: anyone's); NotFound otherwise."""
        return await self._database.write(_revoke, token_id, by, format_time(self.clock()))

    async def page(self, *, email: str | None, after_seq: int | None,
                   limit: int) -> list[tuple[int, ApiToken]]:
        rows = await self._database.read(store.page, email=email, after_seq=after_seq,
                                         limit=limit)
        return [(r["seq"], ApiToken.of(r)) for r in rows]
