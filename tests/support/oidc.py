"""A real OpenID provider for the sign-in tests: panva's oidc-provider (tests/node), on loopback.

`start_provider(redirect_uri)` runs tests/node/oidc_provider.js on a free port and answers an
`OpenIDProvider`: its issuer (http://localhost:PORT, another site than the gateway's
127.0.0.1, as a real IdP is), the gateway's client, a service client whose access tokens are
JWTs for the API, and the private signing key it uses (the tests' own, so that they can mint
tokens its JWKS vouches for). Without node or the npm module the tests skip with one line, or
fail when GATEWAY_REQUIRE_OIDC_PROVIDER=1 (CI): a skipped sign-in suite must not pass for a
tested one.
"""

from __future__ import annotations

import asyncio
import base64
import html
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest

from tests.peers import free_port

ROOT = Path(__file__).resolve().parents[2]
NODE_DIR = ROOT / "tests" / "node"
SCRIPT = NODE_DIR / "oidc_provider.js"
REQUIRE_ENV = "GATEWAY_REQUIRE_OIDC_PROVIDER"

CLIENT_ID = "gateway"
CLIENT_SECRET = "gateway-client-secret-for-tests"
SERVICE_ID = "ticketing-service"
SERVICE_SECRET = "ticketing-service-secret-for-tests"
API_AUDIENCE = "https://gateway.test/api"
SECRET_ENV = "GATEWAY_TEST_OIDC_SECRET"


def node_path() -> str:
    """The node to run the provider with; skips (or fails, REQUIRE_ENV=1) without one."""
    node = shutil.which("node")
    problem = None
    if node is None:
        problem = "node not installed: the OpenID provider of the sign-in tests cannot run"
    elif not (NODE_DIR / "node_modules" / "oidc-provider").is_dir():
        problem = "oidc-provider not installed (make tests/node/node_modules/.installed)"
    if problem is not None:
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{problem}; {REQUIRE_ENV}=1 requires it", pytrace=False)
        pytest.skip(problem)
    assert node is not None
    return node


@dataclass
class OpenIDProvider:
    issuer: str
    process: subprocess.Popen[str]
    signing_key: Any  # joserfc RSAKey, private: the one the provider signs with
    client_id: str = CLIENT_ID
    client_secret: str = CLIENT_SECRET
    audience: str = API_AUDIENCE
    log: list[str] = field(default_factory=list)

    def ui_section(self, **extra: Any) -> dict[str, Any]:
        """`ui.oidc` for a gateway signing in with this provider (the test sets SECRET_ENV
        to `client_secret`)."""
        return {"issuer": self.issuer, "client_id": self.client_id,
                "client_secret_env": SECRET_ENV,
                "scopes": ["openid", "email", "profile", "groups"], **extra}

    async def service_token(self) -> str:
        """An access token (a JWT for the gateway's API) from the client credentials grant."""
        import aiohttp

        basic = base64.b64encode(f"{SERVICE_ID}:{SERVICE_SECRET}".encode()).decode()
        async with aiohttp.ClientSession() as session, session.post(
                f"{self.issuer}/token",
                data={"grant_type": "client_credentials", "scope": "gateway",
                      "resource": self.audience},
                headers={"Authorization": f"Basic {basic}"}) as response:
            body = await response.json()
            assert response.status == 200, body
            return str(body["access_token"])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def issuer_at(port: int) -> str:
    return f"http://localhost:{port}"


async def start_provider(redirect_uri: str, tmp_path: Path, *, port: int | None = None,
                         claims_in_id_token: bool = False) -> OpenIDProvider:
    """The provider on `port` (default: a free one); a gateway may be configured with its
    issuer, `issuer_at(port)`, before it starts (the gateway asks it nothing until then)."""
    node = node_path()
    from joserfc.jwk import KeySet, RSAKey

    key = RSAKey.generate_key(2048, parameters={"alg": "RS256", "use": "sig"})
    key.ensure_kid()
    keys_file = tmp_path / "op-keys.json"
    keys_file.write_text(json.dumps(KeySet([key]).as_dict(private=True)))
    port = port or free_port()
    command = [node, str(SCRIPT), "--port", str(port), "--redirect-uri", redirect_uri,
               "--keys", str(keys_file)]
    if claims_in_id_token:
        command.append("--claims-in-id-token")
    process = subprocess.Popen(command, cwd=NODE_DIR, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = await asyncio.get_running_loop().run_in_executor(None, process.stdout.readline)
    if not line.startswith("listening "):
        process.kill()
        _, err = process.communicate()
        raise AssertionError(f"the OpenID provider did not start: {line}{err[-2000:]}")
    return OpenIDProvider(issuer=line.split()[1], process=process, signing_key=key)


_FORM_ACTION = re.compile(r'<form[^>]*action="([^"]+)"')


async def log_in_at(session: Any, url: str, login: str, *, stop_at: str) -> str:
    """Follow `url` (a sign-in started at the IdP) through the provider's development login
    form as `login`, without a browser, until a redirect leads to `stop_at`: answers that
    address (the callback with its code and state), not yet visited. `session` is an
    aiohttp ClientSession with a cookie jar."""
    for _ in range(20):
        async with session.get(url, allow_redirects=False) as response:
            if response.status in (302, 303):
                url = urljoin(url, response.headers["Location"])
                if url.startswith(stop_at):
                    return url
                continue
            page = await response.text()
            assert response.status == 200, page[:500]
        action = _FORM_ACTION.search(page)
        assert action is not None, page[:500]
        async with session.post(urljoin(url, html.unescape(action.group(1))),
                                data={"prompt": "login", "login": login, "password": "x"},
                                allow_redirects=False) as response:
            assert response.status in (302, 303), await response.text()
            url = urljoin(url, response.headers["Location"])
        if url.startswith(stop_at):
            return url
    raise AssertionError("the provider's login did not lead back to the gateway")


async def gateway_with_provider(start_gateway: Any, tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch, *, jit: bool = False,
                                groups_claim: str | None = "groups", api_oidc: bool = False,
                                **sections: Any) -> tuple[Any, OpenIDProvider]:
    """A gateway (conftest's `start_gateway`) signing in with a real provider started for
    its callback: the gateway first (its address is the provider's redirect URI), knowing
    the issuer it will have. The caller stops the provider."""
    port = free_port()
    monkeypatch.setenv(SECRET_ENV, CLIENT_SECRET)
    ui = {"oidc": {"issuer": issuer_at(port), "client_id": CLIENT_ID,
                   "client_secret_env": SECRET_ENV,
                   "scopes": ["openid", "email", "profile", "groups"],
                   "groups_claim": groups_claim, "button": "Sign in with Acme"}}
    if api_oidc:
        sections["api"] = {"oidc": {"issuer": issuer_at(port), "audience": API_AUDIENCE}}
    gw = await start_gateway(ui=ui, directory={"jit": jit}, **sections)
    op = await start_provider(str(gw.client.make_url("/ui/oidc/callback")), tmp_path,
                              port=port)
    return gw, op
