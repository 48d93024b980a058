"""OpenID Connect against a real provider (panva's oidc-provider, tests/node/oidc_provider.js):
the client's checks of the IdP's answers, tokens minted here with a key of the test's own
(the provider signs with it too, so its JWKS vouches for it), and the IdP's access tokens.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import html
import json
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import aiohttp
import pytest
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey

from gateway.api.keys import DIRECTORY
from gateway.config import ApiOidcConfig, parse_config
from gateway.directory.idp_http import IdentityProviderUnavailable, IdpHttp
from gateway.directory.jwt_tokens import AccessTokens
from gateway.directory.oidc import OidcClient, Pending, SignInRefused
from gateway.directory.people import Person
from gateway.errors import ConfigError, Unauthorized
from tests.conftest import EMAILS, Gateway
from tests.support.oidc import (
    API_AUDIENCE,
    SECRET_ENV,
    OpenIDProvider,
    gateway_with_provider,
    log_in_at,
    start_provider,
)
from tests.test_ui import Browser

REDIRECT = "http://127.0.0.1:9/ui/oidc/callback"  # the client's tests stop before visiting it


@pytest.fixture
async def provider(tmp_path: Path) -> AsyncIterator[OpenIDProvider]:
    op = await start_provider(REDIRECT, tmp_path)
    yield op
    op.stop()


@pytest.fixture
async def http() -> AsyncIterator[IdpHttp]:
    client = IdpHttp(timeout_s=5)
    yield client
    await client.close()


def client_for(op: OpenIDProvider, http: IdpHttp, **extra: Any) -> OidcClient:
    config = parse_config({"ui": {"oidc": op.ui_section(**extra)}},
                          env={SECRET_ENV: op.client_secret})
    assert config.ui.oidc is not None
    return OidcClient(config.ui.oidc, http)


async def callback_of(client: OidcClient, login: str) -> tuple[dict[str, str], Pending, str]:
    """Start a sign-in, log in at the provider as `login`: the callback's query, the pending
    values and their cookie."""
    url, pending = await client.begin(REDIRECT, "/ui/inbox")
    async with aiohttp.ClientSession() as browser:
        back = await log_in_at(browser, url, login, stop_at=REDIRECT)
    return dict(parse_qsl(urlsplit(back).query)), pending, client.seal(pending)


async def test_a_sign_in_names_the_person_and_their_groups(tmp_path: Path,
                                                           http: IdpHttp) -> None:
    # Both ways IdPs hand out claims: in the ID token, or only from the UserInfo endpoint.
    for in_id_token in (False, True):
        op = await start_provider(REDIRECT, tmp_path, claims_in_id_token=in_id_token)
        try:
            client = client_for(op, http, groups_claim="groups")
            query, pending, cookie = await callback_of(client, "alice")
            assert set(query) >= {"code", "state", "iss"}
            pending = client.unseal(cookie, query["state"])
            assert pending.next == "/ui/inbox"
            identity = await client.finish(query, pending, REDIRECT)
            assert identity.email == "alice@acme.com"
            assert identity.groups == ("analytics", "data-stewards")
            assert identity.display_name == "Alice Example"
            assert identity.subject == "alice"
        finally:
            op.stop()


async def test_the_authorization_url_asks_for_pkce_state_and_nonce(provider: OpenIDProvider,
                                                                   http: IdpHttp) -> None:
    url, pending = await client_for(provider, http).begin(REDIRECT, "/ui/")
    query = dict(parse_qsl(urlsplit(url).query))
    assert url.startswith(provider.issuer + "/auth?")
    assert query["code_challenge_method"] == "S256"
    assert len(query["code_challenge"]) == 43 and pending.verifier not in url
    assert query["state"] == pending.state and query["nonce"] == pending.nonce
    assert query["scope"] == "openid email profile groups"
    _, other = await client_for(provider, http).begin(REDIRECT, "/ui/")
    assert other.state != pending.state and other.nonce != pending.nonce


async def test_an_unverified_email_is_refused(provider: OpenIDProvider, http: IdpHttp) -> None:
    client = client_for(provider, http)
    query, _, cookie = await callback_of(client, "mallory")
    with pytest.raises(SignInRefused, match=r"has not verified mallory@acme\.com"):
        await client.finish(query, client.unseal(cookie, query["state"]), REDIRECT)


async def test_a_tampered_state_or_cookie_is_refused(provider: OpenIDProvider,
                                                     http: IdpHttp) -> None:
    client = client_for(provider, http)
    query, pending, cookie = await callback_of(client, "alice")
    with pytest.raises(SignInRefused, match="does not belong to this sign-in"):
        client.unseal(cookie, query["state"][:-1] + ("A" if query["state"][-1] != "A" else "B"))
    with pytest.raises(SignInRefused, match="altered"):
        client.unseal(cookie[:-2] + ("AA" if not cookie.endswith("AA") else "BB"), query["state"])
    # A cookie sealed by another key (another gateway, or forged) opens nothing here.
    forged = jwt.encode({"alg": "HS256"}, {"st": pending.state, "no": "n", "cv": "v",
                                           "nx": "/ui/", "exp": int(time.time()) + 60},
                        OctKey.generate_key(256), algorithms=["HS256"])
    with pytest.raises(SignInRefused, match="altered"):
        client.unseal(forged, query["state"])
    with pytest.raises(SignInRefused, match="not started in this browser"):
        client.unseal(None, query["state"])


async def test_a_replayed_callback_is_refused(provider: OpenIDProvider, http: IdpHttp) -> None:
    client = client_for(provider, http)
    query, pending, cookie = await callback_of(client, "alice")
    await client.finish(query, client.unseal(cookie, query["state"]), REDIRECT)
    with pytest.raises(SignInRefused, match="already been used"):
        client.unseal(cookie, query["state"])
    # Past our own guard (another instance, say), the IdP refuses a code used once.
    with pytest.raises(SignInRefused, match="refused this sign-in's code"):
        await client.finish(query, pending, REDIRECT)


async def test_a_wrong_verifier_or_nonce_is_refused(provider: OpenIDProvider,
                                                    http: IdpHttp) -> None:
    client = client_for(provider, http)
    query, pending, _ = await callback_of(client, "alice")
    stolen = Pending(pending.state, pending.nonce, "another-verifier-" + "x" * 40, pending.next)
    with pytest.raises(SignInRefused, match="refused this sign-in's code"):
        await client.finish(query, stolen, REDIRECT)
    query, pending, _ = await callback_of(client, "alice")
    replayed = Pending(pending.state, "another-nonce", pending.verifier, pending.next)
    with pytest.raises(SignInRefused, match="nonce"):
        await client.finish(query, replayed, REDIRECT)


async def test_an_error_from_the_idp_or_another_issuer_is_refused(provider: OpenIDProvider,
                                                                  http: IdpHttp) -> None:
    client = client_for(provider, http)
    _, pending = await client.begin(REDIRECT, "/ui/")
    with pytest.raises(SignInRefused, match="access_denied"):
        await client.finish({"error": "access_denied", "state": pending.state}, pending,
                            REDIRECT)
    with pytest.raises(SignInRefused, match="another identity provider"):
        await client.finish({"code": "c", "iss": "https://evil.example"}, pending, REDIRECT)


async def test_an_issuer_that_differs_from_its_discovery_document_is_refused(
        provider: OpenIDProvider, http: IdpHttp) -> None:
    client = client_for(provider, http, issuer=provider.issuer + "/")
    with pytest.raises(IdentityProviderUnavailable, match="exactly the IdP's issuer"):
        await client.begin(REDIRECT, "/ui/")


def minted(key: Any, claims: dict[str, Any], *, alg: str = "RS256",
           kid: str | None = None) -> str:
    header: dict[str, Any] = {"alg": alg}
    if kid or getattr(key, "kid", None):
        header["kid"] = kid or key.kid
    return jwt.encode(header, claims, key, algorithms=[alg])


def _part(value: dict[str, Any] | bytes) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unsigned(claims: dict[str, Any]) -> str:
    """`alg: none`: a JWT with an empty signature, as an attacker would send it."""
    return f"{_part({'alg': 'none'})}.{_part(claims)}."


def confused(public_pem: bytes, kid: str, claims: dict[str, Any]) -> str:
    """HS256 keyed with the issuer's public key (anyone has it): the classic algorithm
    confusion. Built by hand: joserfc itself refuses to make one."""
    signing_input = f"{_part({'alg': 'HS256', 'kid': kid})}.{_part(claims)}"
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_part(mac)}"


def bad_tokens(op: OpenIDProvider, good: dict[str, Any]) -> dict[str, str]:
    """Tokens that must be refused, each for one reason."""
    key = op.signing_key
    now = int(time.time())
    another = RSAKey.generate_key(2048, parameters={"alg": "RS256"})
    another.ensure_kid()
    public_pem = key.as_pem(private=False)
    return {
        "wrong aud": minted(key, {**good, "aud": "someone-else"}),
        "wrong iss": minted(key, {**good, "iss": "https://idp.example"}),
        "expired": minted(key, {**good, "iat": now - 7200, "exp": now - 3600}),
        "no exp": minted(key, {k: v for k, v in good.items() if k != "exp"}),
        "alg none": unsigned(good),
        "another key": minted(another, good),
        "another key, the issuer's kid": minted(another, good, kid=key.kid),
        # The public key used as an HMAC secret: the classic algorithm confusion.
        "HS256 with the public key": confused(public_pem, key.kid, good),
    }


async def test_minted_id_tokens_are_refused_for_each_reason(provider: OpenIDProvider,
                                                            http: IdpHttp) -> None:
    client = client_for(provider, http)
    now = int(time.time())
    good = {"iss": provider.issuer, "aud": provider.client_id, "sub": "alice", "iat": now,
            "exp": now + 300, "nonce": "n-1", "email": "alice@acme.com"}
    assert (await client.verify_id_token(minted(provider.signing_key, good), "n-1"))["sub"] \
        == "alice"
    cases = {**bad_tokens(provider, good),
             "wrong nonce": minted(provider.signing_key, {**good, "nonce": "n-2"}),
             "no nonce": minted(provider.signing_key,
                                {k: v for k, v in good.items() if k != "nonce"})}
    for reason, token in cases.items():
        with pytest.raises(SignInRefused):
            await client.verify_id_token(token, "n-1")
            pytest.fail(f"an ID token with {reason} was accepted")


async def test_the_idps_access_tokens_name_their_holder(provider: OpenIDProvider,
                                                        http: IdpHttp) -> None:
    tokens = AccessTokens(ApiOidcConfig(issuer=provider.issuer, audience=provider.audience),
                          http)
    assert await tokens.email_for(await provider.service_token()) == "ticketing@acme.com"
    now = int(time.time())
    good = {"iss": provider.issuer, "aud": provider.audience, "sub": "svc", "iat": now,
            "exp": now + 300, "email": "olive@acme.com"}
    assert await tokens.email_for(minted(provider.signing_key, good)) == "olive@acme.com"
    cases = {**bad_tokens(provider, good),
             "no email": minted(provider.signing_key,
                                {k: v for k, v in good.items() if k != "email"})}
    for reason, token in cases.items():
        with pytest.raises(Unauthorized) as refused:
            await tokens.email_for(token)
            pytest.fail(f"an access token with {reason} was accepted")
        assert token not in refused.value.message


async def test_a_new_signing_key_is_fetched_when_a_token_names_it(tmp_path: Path,
                                                                  http: IdpHttp) -> None:
    """The IdP rotates its keys: a token signed with the new one makes the gateway fetch the
    key set again, but not more often than every 30 seconds (the clock is the test's)."""
    now = [time.time()]
    op = await start_provider(REDIRECT, tmp_path)
    port = int(op.issuer.rsplit(":", 1)[1])
    try:
        tokens = AccessTokens(ApiOidcConfig(issuer=op.issuer, audience=op.audience), http,
                              clock=lambda: now[0])
        assert await tokens.email_for(await op.service_token()) == "ticketing@acme.com"
    finally:
        op.stop()
    (tmp_path / "rotated").mkdir()
    op = await start_provider(REDIRECT, tmp_path / "rotated", port=port)  # a new key
    try:
        rotated = await op.service_token()
        with pytest.raises(Unauthorized, match="no signing key"):
            await tokens.email_for(rotated)  # the set was fetched a moment ago
        now[0] += 31
        assert await tokens.email_for(rotated) == "ticketing@acme.com"
    finally:
        op.stop()


def test_the_configuration_names_each_refused_oidc_key() -> None:
    good = {"issuer": "https://idp.example.com", "client_id": "gateway"}
    refused = {
        "ui.oidc.issuer": {**good, "issuer": "http://idp.example.com"},
        "ui.oidc.client_id": {"issuer": good["issuer"]},
        "ui.oidc.scopes": {**good, "scopes": ["email"]},
        "ui.oidc.client_secret_env": {**good, "client_secret_env": "NOT_SET_ANYWHERE"},
        "ui.oidc.colour": {**good, "colour": "blue"},
        "ui.oidc.groups_claim": {**good, "groups_claim": 3},
    }
    for key, section in refused.items():
        with pytest.raises(ConfigError, match=f"^{re.escape(key)}"):
            parse_config({"ui": {"oidc": section}}, env={})
    with pytest.raises(ConfigError, match=r"^api\.oidc\.audience: missing"):
        parse_config({"api": {"oidc": {"issuer": "https://idp.example.com"}}}, env={})
    config = parse_config({"ui": {"oidc": {**good, "client_secret_env": "S"}},
                           "api": {"oidc": {"issuer": "http://127.0.0.1:8/",
                                            "audience": "gw"}}}, env={"S": "s3cr3t-value"})
    assert config.ui.oidc is not None and config.ui.oidc.client_secret == "s3cr3t-value"
    assert "s3cr3t-value" not in repr(config)
    assert config.ui.oidc.email_claim == "email" and config.ui.oidc.groups_claim is None


# --- the gateway: the inbox's sign-in and the API's tokens ---------------------------------


class SignIn:
    """A gateway configured with the provider, and a browser (cookies by hand) for it."""

    def __init__(self, gw: Gateway, op: OpenIDProvider) -> None:
        self.gw = gw
        self.op = op
        self.browser = Browser(gw)
        self.callback = str(gw.client.make_url("/ui/oidc/callback"))

    async def start(self, next_path: str = "/ui/requests") -> tuple[str, Any]:
        """The sign-in page's button: the IdP's address, and the answer that sends there."""
        status, text, _ = await self.browser.get("/ui/sign-in")
        assert status == 200 and "Sign in with Acme" in text, text
        status, text, response = await self.browser.post("/ui/oidc/start",
                                                         {"next": next_path})
        assert status == 200, text
        found = re.search(r'<meta http-equiv="refresh" content="0;url=([^"]+)">', text)
        assert found, text
        return html.unescape(found.group(1)), response

    async def at_idp(self, url: str, login: str) -> str:
        """Log in at the IdP: the callback's path and query, not yet visited."""
        async with aiohttp.ClientSession() as idp_browser:
            back = await log_in_at(idp_browser, url, login, stop_at=self.callback)
        return back.removeprefix(str(self.gw.client.make_url("")).rstrip("/"))

    async def complete(self, login: str, next_path: str = "/ui/requests"
                       ) -> tuple[int, str, Any]:
        url, _ = await self.start(next_path)
        return await self.browser.get(await self.at_idp(url, login))


@pytest.fixture
async def sign_in(start_gateway: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                  ) -> AsyncIterator[Any]:
    """`await sign_in(jit=..., **sections)`: a gateway signing in with a real provider."""
    providers: list[OpenIDProvider] = []

    async def start(**options: Any) -> SignIn:
        gw, op = await gateway_with_provider(start_gateway, tmp_path, monkeypatch, **options)
        providers.append(op)
        return SignIn(gw, op)

    yield start
    for op in providers:
        op.stop()


async def test_signing_in_with_the_idp_opens_a_session(sign_in: Any) -> None:
    flow: SignIn = await sign_in()
    url, response = await flow.start("/ui/requests")
    assert url.startswith(flow.op.issuer + "/auth?")
    pending = next(h for h in response.headers.getall("Set-Cookie") if "gw_oidc_" in h)
    assert "Path=/ui/oidc/callback" in pending and "HttpOnly" in pending
    assert "SameSite=Lax" in pending  # the IdP's redirect back is a cross-site navigation
    status, text, response = await flow.browser.get(await flow.at_idp(url, "johndoe"))
    assert status == 200, text
    assert '<meta http-equiv="refresh" content="0;url=/ui/requests">' in text
    session = next(h for h in response.headers.getall("Set-Cookie") if "gw_session=" in h)
    assert "SameSite=Strict" in session and "HttpOnly" in session
    assert not any(name.startswith("gw_oidc_") for name in flow.browser.cookies)
    status, text, _ = await flow.browser.get("/ui/requests")
    assert status == 200 and EMAILS["requester"] in text
    # Sign-out ends it like any session; token sign-in still works beside it.
    status, _, _ = await flow.browser.post("/ui/sign-out", {})
    assert status == 303
    status, _, response = await flow.browser.get("/ui/requests")
    assert status == 303 and "/ui/sign-in" in response.headers["Location"]
    await flow.browser.sign_in("approver")
    assert (await flow.browser.get("/ui/inbox"))[0] == 200


async def test_an_unknown_person_is_told_whom_to_ask(sign_in: Any) -> None:
    flow: SignIn = await sign_in(jit=False)
    status, text, response = await flow.complete("alice")
    assert status == 401, text
    assert "alice@acme.com, who is not a user of this gateway" in text, text[text.find("<main"):]
    assert EMAILS["admin"] in text  # whom to ask
    assert "gw_session=" not in " ".join(response.headers.getall("Set-Cookie", []))
    assert await flow.gw.app[DIRECTORY].get("alice@acme.com") is None


async def test_jit_creates_the_person_with_their_groups_as_teams(sign_in: Any) -> None:
    flow: SignIn = await sign_in(jit=True)
    status, text, _ = await flow.complete("newcomer")
    assert status == 200, text
    person = await flow.gw.app[DIRECTORY].get("newcomer@acme.com")
    assert person is not None and person.active and person.source == "oidc"
    assert sorted(person.teams) == ["analytics", "onboarding"]
    assert person.display_name == "New Comer" and not person.admin
    assert EMAILS["requester"] not in (await flow.browser.get("/ui/requests"))[1]
    # Teams follow the groups claim at each sign-in (for the people jit created).
    await flow.gw.app[DIRECTORY].save(dataclasses.replace(person, teams=("old-team",)),
                                      actor=EMAILS["admin"], by="api")
    assert (await SignIn(flow.gw, flow.op).complete("newcomer"))[0] == 200
    person = await flow.gw.app[DIRECTORY].get("newcomer@acme.com")
    assert person is not None and sorted(person.teams) == ["analytics", "onboarding"]
    # Deactivated (SCIM, the API): the next sign-in is refused, and jit does not revive them.
    await flow.gw.app[DIRECTORY].save(dataclasses.replace(person, active=False),
                                      actor=EMAILS["admin"], by="api")
    assert (await flow.browser.get("/ui/requests"))[0] == 303  # the session ended at once
    again = SignIn(flow.gw, flow.op)
    status, text, _ = await again.complete("newcomer")
    assert status == 401 and "newcomer@acme.com, who is not an active user" in text, text


async def test_an_unverified_email_is_refused_at_the_callback(sign_in: Any) -> None:
    flow: SignIn = await sign_in(jit=True)
    status, text, _ = await flow.complete("mallory")
    assert status == 401 and "has not verified mallory@acme.com" in text, text
    assert await flow.gw.app[DIRECTORY].get("mallory@acme.com") is None


async def test_a_tampered_state_and_a_replayed_callback_are_refused(sign_in: Any) -> None:
    flow: SignIn = await sign_in()
    url, _ = await flow.start()
    back = await flow.at_idp(url, "johndoe")
    state = dict(parse_qsl(urlsplit(back).query))["state"]
    other = state[:-1] + ("A" if state[-1] != "A" else "B")
    tampered = back.replace(f"state={state}", f"state={other}")
    status, text, _ = await flow.browser.get(tampered)
    assert status == 401 and "gw_session" not in flow.browser.cookies, text
    status, text, _ = await flow.browser.get(back)
    assert status == 200 and "gw_session" in flow.browser.cookies, text
    session = flow.browser.cookies.pop("gw_session")
    status, text, _ = await flow.browser.get(back)  # the same answer again
    assert status == 401 and "gw_session" not in flow.browser.cookies, text
    # Another browser that captured the callback address gets nothing either.
    thief = Browser(flow.gw)
    status, _, _ = await thief.get(back)
    assert status == 401 and "gw_session" not in thief.cookies
    assert session


async def test_the_return_address_is_only_ever_a_path_of_this_gateway(sign_in: Any) -> None:
    flow: SignIn = await sign_in()
    for hostile in ("https://evil.example/", "//evil.example/ui/", "/ui/..//evil.example",
                    "/ui/\\evil.example", "javascript:alert(1)"):
        browser = Browser(flow.gw)
        flow.browser = browser
        status, text, _ = await flow.complete("johndoe", hostile)
        assert status == 200, text
        assert '<meta http-equiv="refresh" content="0;url=/ui/inbox">' in text, hostile


async def test_the_idps_access_tokens_work_on_the_api_for_active_people(
        sign_in: Any) -> None:
    flow: SignIn = await sign_in(api_oidc=True)
    gw, op = flow.gw, flow.op

    async def call(token: str) -> tuple[int, Any]:
        return await gw.call("GET", "/v1/resource-access-requests", user=None,
                             headers={"Authorization": f"Bearer {token}"})

    status, body = await call(await op.service_token())  # ticketing@acme.com, an integration
    assert status == 200, body
    status, me = await gw.call("GET", "/v1/me", user=None, headers={
        "Authorization": f"Bearer {await op.service_token()}"})
    assert status == 200 and me["email"] == EMAILS["integration"] and me["integration"], me
    now = int(time.time())
    good = {"iss": op.issuer, "aud": API_AUDIENCE, "sub": "u", "iat": now, "exp": now + 300,
            "email": EMAILS["requester"].upper()}
    created = await gw.create()
    status, body = await call(minted(op.signing_key, good))
    assert status == 200 and [r["id"] for r in body["items"]] == [created["id"]], body
    refused = {**bad_tokens(op, good),
               "an unknown person": minted(op.signing_key, {**good, "email": "x@acme.com"})}
    for reason, token in refused.items():
        status, body = await call(token)
        assert status == 401 and body["error"]["code"] == "unauthorized", (reason, body)
        assert token not in str(body)
    # A person deactivated is refused at once.
    person = await gw.app[DIRECTORY].get("newcomer@acme.com")
    assert person is None
    await gw.app[DIRECTORY].create(Person(email="newcomer@acme.com", source="api"),
                                   actor=EMAILS["admin"])
    token = minted(op.signing_key, {**good, "email": "newcomer@acme.com"})
    assert (await call(token))[0] == 200
    person = await gw.app[DIRECTORY].get("newcomer@acme.com")
    assert person is not None
    await gw.app[DIRECTORY].save(dataclasses.replace(person, active=False),
                                 actor=EMAILS["admin"], by="api")
    status, body = await call(token)
    assert status == 401 and "not an active user" in body["error"]["message"], body


async def test_without_api_oidc_the_idps_tokens_open_nothing(sign_in: Any) -> None:
    flow: SignIn = await sign_in()
    status, body = await flow.gw.call(
        "GET", "/v1/resource-access-requests", user=None,
        headers={"Authorization": f"Bearer {await flow.op.service_token()}"})
    assert status == 401 and body["error"]["message"] == "unknown or revoked token", body


def test_without_node_the_sign_in_tests_skip_in_one_line_or_fail_in_ci(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from tests.support import oidc

    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.delenv(oidc.REQUIRE_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception) as skipped:
        oidc.node_path()
    assert str(skipped.value).startswith("node not installed") and "\n" not in str(skipped.value)
    monkeypatch.setenv(oidc.REQUIRE_ENV, "1")
    with pytest.raises(pytest.fail.Exception):
        oidc.node_path()


async def test_without_ui_oidc_there_is_no_button_and_no_way_in(gw: Gateway) -> None:
    browser = Browser(gw)
    status, text, _ = await browser.get("/ui/sign-in")
    assert status == 200 and "/ui/oidc/start" not in text
    status, text, _ = await browser.post("/ui/oidc/start", {"next": "/ui/inbox"})
    assert status == 404 and "not configured" in text
    status, text, _ = await browser.get("/ui/oidc/callback?code=c&state=s")
    assert status == 404 and "gw_session" not in browser.cookies
