"""OpenID Connect sign-in (SPEC §14): the authorization code flow with PKCE, `state` and `nonce`.

`OidcClient.begin` answers the address of the identity provider's sign-in page and the
`Pending` values the callback needs (kept by the browser in a signed cookie that lives ten
minutes); `OidcClient.finish` checks the callback against them, exchanges the code, verifies
the ID token with the issuer's keys (signature, `iss`, `aud`, `exp`, `iat`, `nonce`, `azp`) and
answers who signed in. Authlib checks the discovery document and the ID token's claims;
joserfc verifies signatures. Nothing here knows about sessions or the directory.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oidc.core import CodeIDToken
from authlib.oidc.discovery import OpenIDProviderMetadata
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey

from gateway.config import OidcConfig
from gateway.directory.idp_http import IdentityProviderUnavailable, IdpHttp
from gateway.directory.jwks import KeyCache, UnknownKey, reason, verify_signature
from gateway.errors import Unauthorized

__all__ = ["Identity", "OidcClient", "Pending", "SignInRefused", "discovery_url"]

PENDING_TTL_S = 600  # a sign-in at the IdP must end within ten minutes
METADATA_TTL_S = 3600
LEEWAY_S = 60  # clock difference accepted between the IdP and us
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


class SignInRefused(Unauthorized):
    """The IdP's answer does not sign anyone in; the message says why, for the person."""

    code = "sign-in-refused"


@dataclass(frozen=True)
class Pending:
    """What the callback needs to check: our state, nonce, PKCE verifier and where to go."""

    state: str
    nonce: str
    verifier: str
    next: str


@dataclass(frozen=True)
class Identity:
    """Who signed in, as the IdP vouches for them."""

    email: str
    subject: str
    display_name: str | None
    groups: tuple[str, ...] | None  # None: the groups claim is not configured or not sent


def discovery_url(issuer: str) -> str:
    return issuer.rstrip("/") + "/.well-known/openid-configuration"


class OidcClient:
    def __init__(self, config: OidcConfig, http: IdpHttp, *,
                 clock: Callable[[], float] = time.time) -> None:
        self._config = config
        self._http = http
        self._clock = clock
        self._metadata: OpenIDProviderMetadata | None = None
        self._metadata_at = float("-inf")
        self.keys = KeyCache(self._jwks_uri, lambda url: http.get_json(url, step="key set"),
                             clock=clock)
        # The pending cookie's key: from the client secret, so that every instance of the
        # gateway opens the cookies of the others; a public client gets one per process.
        secret = config.client_secret.encode() if config.client_secret \
            else secrets.token_bytes(32)
        self._cookie_key = OctKey.import_key(
            hmac.new(secret, b"gateway oidc pending cookie", hashlib.sha256).digest())
        self._used: dict[str, float] = {}  # states already answered, until they expire

    @property
    def config(self) -> OidcConfig:
        return self._config

    async def metadata(self) -> OpenIDProviderMetadata:
        """The issuer's discovery document, checked, and kept for an hour."""
        if self._metadata is not None and self._clock() - self._metadata_at < METADATA_TTL_S:
            return self._metadata
        document = await self._http.get_json(discovery_url(self._config.issuer),
                                              step="discovery document")
        if not isinstance(document, dict):
            raise IdentityProviderUnavailable("the identity provider's discovery document is "
                                              "not a JSON object")
        metadata = OpenIDProviderMetadata(document)
        try:
            metadata.validate()
        except ValueError as exc:
            raise IdentityProviderUnavailable(
                f"the identity provider's discovery document is not valid ({exc})") from None
        if metadata["issuer"] != self._config.issuer:
            raise IdentityProviderUnavailable(
                f"the discovery document names the issuer {metadata['issuer']!r}, not "
                f"{self._config.issuer!r} (ui.oidc.issuer must be exactly the IdP's issuer)")
        self._metadata, self._metadata_at = metadata, self._clock()
        return metadata

    async def _jwks_uri(self) -> str:
        return str((await self.metadata())["jwks_uri"])

    # --- the way out -----------------------------------------------------------------------

    async def begin(self, redirect_uri: str, next_path: str) -> tuple[str, Pending]:
        """The IdP's authorization URL for a new sign-in, and what its callback will need."""
        metadata = await self.metadata()
        pending = Pending(state=secrets.token_urlsafe(32), nonce=secrets.token_urlsafe(32),
                          verifier=secrets.token_urlsafe(64), next=next_path)
        query = {
            "response_type": "code",
            "client_id": self._config.client_id,
            "redirect_uri": redirect_uri,
            "scope": " ".join(self._config.scopes),
            "state": pending.state,
            "nonce": pending.nonce,
            "code_challenge": create_s256_code_challenge(pending.verifier),
            "code_challenge_method": "S256",
        }
        endpoint = str(metadata["authorization_endpoint"])
        joiner = "&" if "?" in endpoint else "?"
        return endpoint + joiner + urlencode(query), pending

    def seal(self, pending: Pending) -> str:
        """The pending values as a cookie: a JWT signed with our key, expiring with the sign-in."""
        now = int(self._clock())
        claims = {"st": pending.state, "no": pending.nonce, "cv": pending.verifier,
                  "nx": pending.next, "iat": now, "exp": now + PENDING_TTL_S}
        return jwt.encode({"alg": "HS256"}, claims, self._cookie_key, algorithms=["HS256"])

    def unseal(self, cookie: str | None, state: str) -> Pending:
        """The pending values of the sign-in that `state` names; refused when the cookie is
        missing, forged, expired, of another sign-in, or its callback was already answered."""
        if not cookie:
            raise SignInRefused("this sign-in was not started in this browser, or it has "
                                "already been used: start again")
        try:
            token = jwt.decode(cookie, self._cookie_key, algorithms=["HS256"])
            jwt.JWTClaimsRegistry(now=int(self._clock()), exp={"essential": True}).validate(
                token.claims)
            claims = token.claims
            pending = Pending(state=str(claims["st"]), nonce=str(claims["no"]),
                              verifier=str(claims["cv"]), next=str(claims["nx"]))
        except (JoseError, KeyError, ValueError):
            raise SignInRefused("this sign-in has expired or its cookie was altered: "
                                "start again") from None
        if not hmac.compare_digest(pending.state.encode(), state.encode()):
            raise SignInRefused("the identity provider's answer does not belong to this "
                                "sign-in: start again")
        self._forget_expired()
        digest = hashlib.sha256(pending.state.encode()).hexdigest()
        if digest in self._used:
            raise SignInRefused("this sign-in has already been used: start again")
        self._used[digest] = self._clock() + PENDING_TTL_S
        return pending

    def _forget_expired(self) -> None:
        now = self._clock()
        for digest in [d for d, until in self._used.items() if until < now]:
            del self._used[digest]

    # --- the way back ----------------------------------------------------------------------

    async def finish(self, query: Mapping[str, str], pending: Pending,
                     redirect_uri: str) -> Identity:
        """Who signed in, from the callback's query once `unseal` has matched its state."""
        metadata = await self.metadata()
        if "error" in query:
            raise SignInRefused("the identity provider did not sign you in "
                                f"({_short(query.get('error_description') or query['error'])})")
        # RFC 9207: an IdP that names itself in the answer must name the one we asked.
        if "iss" in query and query["iss"] != self._config.issuer:
            raise SignInRefused("the answer came from another identity provider")
        code = query.get("code")
        if not code:
            raise SignInRefused("the identity provider's answer carries no code")
        tokens = await self._exchange(metadata, code, pending, redirect_uri)
        access_token = tokens.get("access_token")
        claims = await self.verify_id_token(
            tokens["id_token"], pending.nonce,
            access_token if isinstance(access_token, str) else None)
        claims = await self._with_userinfo(metadata, claims, tokens)
        return self._identity(claims)

    async def _exchange(self, metadata: OpenIDProviderMetadata, code: str, pending: Pending,
                        redirect_uri: str) -> dict[str, Any]:
        form = {"grant_type": "authorization_code", "code": code,
                "redirect_uri": redirect_uri, "code_verifier": pending.verifier}
        basic = None
        if self._config.client_secret is None:
            form["client_id"] = self._config.client_id
        elif "client_secret_basic" in metadata.token_endpoint_auth_methods_supported:
            basic = (self._config.client_id, self._config.client_secret)
        else:
            form["client_id"] = self._config.client_id
            form["client_secret"] = self._config.client_secret
        status, body = await self._http.post_form(str(metadata["token_endpoint"]), form,
                                                  step="code exchange", basic=basic)
        if status != 200 or not isinstance(body, dict):
            reason = body.get("error") if isinstance(body, dict) else None
            if status == 400 and reason == "invalid_grant":
                raise SignInRefused("the identity provider refused this sign-in's code (used "
                                    "already, or expired): start again")
            raise IdentityProviderUnavailable(
                f"the identity provider answered {status} to the code exchange"
                + (f" ({_short(str(reason))})" if reason else ""))
        if not isinstance(body.get("id_token"), str):
            raise IdentityProviderUnavailable("the identity provider sent no ID token: is "
                                              "`openid` among ui.oidc.scopes?")
        return body

    async def verify_id_token(self, id_token: str, nonce: str,
                              access_token: str | None = None) -> dict[str, Any]:
        """The claims of an ID token signed by the issuer, for this client (`aud`, `azp`),
        unexpired, carrying our `nonce` (and the access token's `at_hash`, when given)."""
        try:
            token = await verify_signature(id_token, self.keys)
        except (JoseError, UnknownKey) as exc:
            raise SignInRefused(f"the ID token is not signed by the identity provider "
                                f"({_short(reason(exc))})") from None
        options = {"iss": {"essential": True, "value": self._config.issuer},
                   "aud": {"essential": True, "value": self._config.client_id},
                   "exp": {"essential": True}}
        claims = CodeIDToken(token.claims, dict(token.header), options=options,
                             params={"nonce": nonce, "client_id": self._config.client_id,
                                     "access_token": access_token})
        try:
            claims.validate(now=int(self._clock()), leeway=LEEWAY_S)
        except JoseError as exc:
            raise SignInRefused(f"the ID token is not valid for this gateway "
                                f"({_short(reason(exc))})") from None
        return dict(token.claims)

    async def _with_userinfo(self, metadata: OpenIDProviderMetadata, claims: dict[str, Any],
                             tokens: dict[str, Any]) -> dict[str, Any]:
        """Many IdPs put the e-mail and groups only in the UserInfo answer (the ID token of
        the code flow may carry `sub` alone): ask it for what the ID token lacks."""
        wanted = [self._config.email_claim, *filter(None, [self._config.groups_claim])]
        endpoint = metadata.get("userinfo_endpoint")
        if all(name in claims for name in wanted) or not endpoint \
                or not isinstance(tokens.get("access_token"), str):
            return claims
        info = await self._http.get_json(str(endpoint), step="userinfo",
                                         bearer=tokens["access_token"])
        if not isinstance(info, dict) or info.get("sub") != claims.get("sub"):
            raise SignInRefused("the identity provider's user information is about someone "
                                "else than its ID token")
        return {**info, **{k: v for k, v in claims.items() if k not in info or k in
                           ("iss", "aud", "exp", "iat", "nonce", "sub")}}

    def _identity(self, claims: dict[str, Any]) -> Identity:
        name = self._config.email_claim
        email = claims.get(name)
        if not isinstance(email, str) or not _EMAIL.fullmatch(email.strip()) \
                or len(email) > 254:
            raise SignInRefused(f"the identity provider sent no e-mail address in the claim "
                                f"{name!r}")
        # An address the IdP has not verified could be anyone's: refused. An IdP that does not
        # send the claim at all vouches for the address by its own rules (docs/sign-in.md).
        verified = claims.get("email_verified")
        if verified is False or (isinstance(verified, str) and verified.lower() == "false"):
            raise SignInRefused(f"the identity provider has not verified {email.strip()}: "
                                "verify the address there, then sign in again")
        groups: tuple[str, ...] | None = None
        if self._config.groups_claim:
            raw = claims.get(self._config.groups_claim)
            if isinstance(raw, str):
                raw = [raw]
            if isinstance(raw, list):
                groups = tuple(sorted({g for g in raw if isinstance(g, str) and g.strip()}))
        display = claims.get("name")
        return Identity(email=email.strip(), subject=str(claims.get("sub", "")),
                        display_name=display if isinstance(display, str) and display else None,
                        groups=groups)


def _short(text: str) -> str:
    """What an IdP says, cut and cleaned for a page: never more than a line."""
    return re.sub(r"[^\w .,:;'()/-]", "", text)[:200]

