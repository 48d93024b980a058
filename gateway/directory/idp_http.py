"""The one way the gateway talks to its identity provider: JSON over HTTP(S), with aiohttp.

aiohttp rather than Authlib's async client (which needs httpx): the gateway already runs on
aiohttp, so the IdP's calls share its event loop, its TLS defaults and its timeouts, and no
second HTTP stack is installed for three requests. Answers are bounded in size and time, and
a failure says which step failed, never what the IdP sent back in full.
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson

from gateway.errors import GatewayError

__all__ = ["IdentityProviderUnavailable", "IdpHttp"]

MAX_ANSWER_BYTES = 1024 * 1024


class IdentityProviderUnavailable(GatewayError):
    """The identity provider cannot be reached, or answered something unusable."""

    status = 503
    code = "identity-provider-unavailable"


class IdpHttp:
    def __init__(self, timeout_s: float = 10.0) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout,
                                                  headers={"Accept": "application/json"})
        return self._session

    async def get_json(self, url: str, *, step: str, bearer: str | None = None) -> Any:
        headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
        return await self._call("GET", url, step=step, headers=headers)

    async def post_form(self, url: str, form: dict[str, str], *, step: str,
                        basic: tuple[str, str] | None = None) -> tuple[int, Any]:
        """The status and JSON body of a form POST (the token endpoint answers errors as
        JSON with 400, which the caller reads)."""
        headers = {}
        if basic is not None:
            # RFC 6749 §2.3.1: the id and secret are form-encoded before Basic encoding.
            pair = f"{quote(basic[0], safe='')}:{quote(basic[1], safe='')}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        return await self._call("POST", url, step=step, data=form, headers=headers,
                                with_status=True)

    async def _call(self, method: str, url: str, *, step: str, with_status: bool = False,
                    **kwargs: Any) -> Any:
        try:
            async with self._client().request(method, url, allow_redirects=False,
                                              **kwargs) as response:
                body = await _bounded(response)
                status = response.status
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            raise IdentityProviderUnavailable(
                f"the identity provider could not be reached ({step}: "
                f"{type(exc).__name__})") from None
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            data = None
        if with_status:
            return status, data
        if status != 200 or data is None:
            raise IdentityProviderUnavailable(
                f"the identity provider answered {status} to the {step}")
        return data

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


async def _bounded(response: aiohttp.ClientResponse) -> bytes:
    if response.content_length is not None and response.content_length > MAX_ANSWER_BYTES:
        raise ValueError("answer too large")
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(65536):
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            raise ValueError("answer too large")
        chunks.append(chunk)
    return b"".join(chunks)
