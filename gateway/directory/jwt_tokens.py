"""The identity provider's JWT access tokens on the API (`api.oidc`, SPEC §14).

A service that holds a token from the gateway's IdP (client credentials, or a person's token
for this API) calls the gateway with it: the signature must come from the issuer's JWKS
(found through its discovery document, kept, fetched again for an unknown key id), and
`iss`, `aud` and `exp` must match. The e-mail claim names the person; whether they are an
active user is the authenticator's question, not this module's.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from joserfc.errors import JoseError
from joserfc.jwt import JWTClaimsRegistry

from gateway.config import ApiOidcConfig
from gateway.directory.idp_http import IdentityProviderUnavailable, IdpHttp
from gateway.directory.jwks import KeyCache, UnknownKey, reason, verify_signature
from gateway.directory.oidc import discovery_url
from gateway.errors import Unauthorized

__all__ = ["AccessTokens", "looks_like_jwt"]

LEEWAY_S = 60
METADATA_TTL_S = 3600


def looks_like_jwt(token: str) -> bool:
    """Three base64url parts: worth verifying as a JWT (our own tokens never look so)."""
    return token.count(".") == 2 and token.startswith("eyJ")


class AccessTokens:
    def __init__(self, config: ApiOidcConfig, http: IdpHttp, *,
                 clock: Callable[[], float] = time.time) -> None:
        self._config = config
        self._http = http
        self._clock = clock
        self._jwks_uri: str | None = None
        self._jwks_at = float("-inf")
        self.keys = KeyCache(self._find_jwks_uri, lambda url: http.get_json(url, step="key set"),
                             clock=clock)

    async def _find_jwks_uri(self) -> str:
        if self._jwks_uri is None or self._clock() - self._jwks_at >= METADATA_TTL_S:
            document = await self._http.get_json(discovery_url(self._config.issuer),
                                                  step="discovery document")
            uri = document.get("jwks_uri") if isinstance(document, dict) else None
            if not isinstance(uri, str) or document.get("issuer") != self._config.issuer:
                raise IdentityProviderUnavailable(
                    "the identity provider's discovery document names no key set, or another "
                    "issuer than api.oidc.issuer")
            self._jwks_uri, self._jwks_at = uri, self._clock()
        return self._jwks_uri

    async def email_for(self, token: str) -> str:
        """The address a valid access token names; Unauthorized otherwise (with why)."""
        try:
            verified = await verify_signature(token, self.keys)
        except (JoseError, UnknownKey) as exc:
            raise Unauthorized(f"the access token's signature is not the issuer's "
                               f"({reason(exc)})") from None
        registry = JWTClaimsRegistry(
            now=int(self._clock()), leeway=LEEWAY_S,
            iss={"essential": True, "value": self._config.issuer},
            aud={"essential": True, "value": self._config.audience},
            exp={"essential": True})
        try:
            registry.validate(verified.claims)
        except JoseError as exc:
            raise Unauthorized(f"the access token is not valid for this gateway "
                               f"({reason(exc)})") from None
        email = verified.claims.get(self._config.email_claim)
        if not isinstance(email, str) or "@" not in email:
            raise Unauthorized(f"the access token names no one (no {self._config.email_claim!r} "
                               "claim)")
        return email.strip()

