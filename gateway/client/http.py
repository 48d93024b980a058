"""The client's one I/O seam: synchronous JSON calls to the approval API over http.client.

The standard library, not aiohttp: a command-line call makes a handful of requests, one after
another, and must start fast. One connection is kept for all the calls of a run (an `ls`
paging through `nextCursor`, `cancel 1 2 3`). Errors come in two kinds, because they leave
with different exit codes: `ApiError` (the API answered and refused) and `Unreachable`
(no usable answer at all).
"""

from __future__ import annotations

import http.client
import json
import socket
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from gateway import __version__

Query = list[tuple[str, str]]
IDEMPOTENT = frozenset({"GET", "PUT", "DELETE"})


class ApiError(Exception):
    """The API's error document (SPEC §9): `{"error": {"code", "message", "details"}}`."""

    def __init__(self, status: int, code: str, message: str,
                 details: dict[str, Any] | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}


class Unreachable(Exception):
    """No answer from a gateway: refused, timed out, or something else answered."""


def segment(value: str) -> str:
    """One path segment, percent-encoded (`/` too: item keys and team names may hold one)."""
    return quote(value, safe="@")


class Api:
    """Calls one gateway as one user; the token lives here and in no message."""

    def __init__(self, url: str, token: str, *, timeout: float = 30.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise Unreachable(f"--url {url!r}: expected http://HOST[:PORT] or https://...")
        self.url = url.rstrip("/")
        self._scheme = parts.scheme
        self._netloc = parts.netloc.rpartition("@")[2]
        self._prefix = parts.path.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}", "Accept": "application/json",
                         "User-Agent": f"gateway-client/{__version__}"}
        self._timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    def call(self, method: str, path: str, *, query: Query | None = None,
             body: Any = None) -> Any:
        """The answer's JSON document; `ApiError` for a refusal, `Unreachable` without one."""
        target = self._prefix + path + (f"?{urlencode(query)}" if query else "")
        headers = dict(self._headers)
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        status, content_type, raw = self._exchange(method, target, payload, headers)
        try:
            document = json.loads(raw) if content_type.startswith("application/json") else None
        except ValueError:
            document = None
        if 200 <= status < 300 and document is not None:
            return document
        error = document.get("error") if isinstance(document, dict) else None
        if isinstance(error, dict) and isinstance(error.get("code"), str):
            raise ApiError(status, error["code"], str(error.get("message", "")),
                           error.get("details") if isinstance(error.get("details"), dict)
                           else None)
        raise Unreachable(f"{self.url} answered {status} ({content_type or 'no content type'})"
                          f", not the gateway's JSON: is it the gateway?")

    def _exchange(self, method: str, target: str, payload: bytes | None,
                  headers: dict[str, str]) -> tuple[int, str, bytes]:
        reused = self._conn is not None
        try:
            return self._once(method, target, payload, headers)
        except (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected):
            self.close()
            if not (reused and method in IDEMPOTENT):
                raise Unreachable(f"{self.url}: the connection was closed mid-call") from None
        except TimeoutError:
            self.close()
            raise Unreachable(f"{self.url}: no answer within {self._timeout:g} s") from None
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise Unreachable(f"cannot reach {self.url}: {_reason(exc)}") from None
        # A kept-alive connection the server had closed: once more on a new one.
        try:
            return self._once(method, target, payload, headers)
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise Unreachable(f"cannot reach {self.url}: {_reason(exc)}") from None

    def _once(self, method: str, target: str, payload: bytes | None,
              headers: dict[str, str]) -> tuple[int, str, bytes]:
        if self._conn is None:
            kind = http.client.HTTPSConnection if self._scheme == "https" \
                else http.client.HTTPConnection
            self._conn = kind(self._netloc, timeout=self._timeout)
        self._conn.request(method, target, body=payload, headers=headers)
        response = self._conn.getresponse()
        raw = response.read()
        if response.will_close:
            self.close()
        return response.status, response.headers.get("Content-Type", ""), raw

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _reason(exc: BaseException) -> str:
    """A few words for people: `connection refused`, not `[Errno 111] Connection refused`."""
    if isinstance(exc, socket.gaierror):
        return "unknown host"
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return text[0].lower() + text[1:]
