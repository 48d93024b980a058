"""One webhook POST per delivery (SPEC §4, §6): signed, no redirects, bounded in time and in
what it reads, and never to a forbidden address unless the configuration allows it.

The address check runs in the resolver, on the addresses the connection will actually use, so
a name that resolves to a public address when the policy is written and to 127.0.0.1 when the
delivery is made (DNS rebinding) is still refused. IP literals skip resolution and are checked
before connecting.
"""

from __future__ import annotations

import contextvars
import socket
import time
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from gateway import __version__
from gateway.config import WebhookConfig
from gateway.delivery.phases import SNIPPET_BYTES, PhaseClock, snippet
from gateway.destinations import is_forbidden_address
from gateway.signing import SigningKeys, signature_headers
from gateway.store.outcome import Outcome
from gateway.timeutil import now_text

USER_AGENT = f"access-request-gateway/{__version__}"


class BlockedDestination(OSError):
    """The destination resolves to an address the configuration does not allow."""


class GuardedResolver(AbstractResolver):
    def __init__(self, allow_private: bool, inner: AbstractResolver | None = None) -> None:
        self._inner = inner or DefaultResolver()
        self._allow_private = allow_private

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        if not self._allow_private:
            for result in results:
                if is_forbidden_address(result["host"]):
                    raise BlockedDestination(
                        f"{host} resolves to {result['host']}, a loopback, private or "
                        "link-local address (webhook.allow_private_networks is off)")
        return results

    async def close(self) -> None:
        await self._inner.close()


# The attempt under way in this task: the connector and the request class mark its phases
# (the trace callbacks get it through trace_request_ctx).
_CLOCK: contextvars.ContextVar[PhaseClock | None] = contextvars.ContextVar(
    "webhook_phase_clock", default=None)


class _TimedConnector(aiohttp.TCPConnector):
    """Marks the end of DNS, the TCP connection and the TLS handshake apart: the protocol
    factory is called once the socket is connected, before the handshake."""

    async def _wrap_create_connection(self, *args: Any, **kwargs: Any) -> Any:
        clock = _CLOCK.get()
        if clock is None:
            return await super()._wrap_create_connection(*args, **kwargs)
        tls = bool(kwargs.get("ssl"))
        clock.enter("connect")
        # The address about to be tried: what the record shows when it refuses or never
        # answers (aiohttp calls again with the rest, so a failure shows the last one).
        addresses = kwargs.get("addr_infos") or []
        if addresses:
            clock.peer(addresses[0][4])
        factory = args[0]

        def connected() -> Any:
            if tls:
                clock.enter("tls")
            else:
                clock.leave("connect")
            return factory()

        transport, protocol = await super()._wrap_create_connection(
            connected, *args[1:], **kwargs)
        clock.leave("tls" if tls else "connect")
        clock.peer(transport.get_extra_info("peername"))
        return transport, protocol


class _TimedRequest(aiohttp.ClientRequest):
    """Notes the address of the connection the request goes on (new or reused)."""

    async def send(self, conn: Any) -> Any:
        clock = _CLOCK.get()
        if clock is not None and conn.transport is not None:
            clock.peer(conn.transport.get_extra_info("peername"))
        return await super().send(conn)


async def _on_connection_start(_s: Any, ctx: SimpleNamespace, _p: Any) -> None:
    if isinstance(ctx.trace_request_ctx, PhaseClock):
        ctx.trace_request_ctx.enter("dns")


async def _on_written(_s: Any, ctx: SimpleNamespace, _p: Any) -> None:
    # Headers, then each chunk of the body: "sent" starts once the last of it is written.
    if isinstance(ctx.trace_request_ctx, PhaseClock):
        ctx.trace_request_ctx.enter("sent")


def _trace_config() -> aiohttp.TraceConfig:
    config = aiohttp.TraceConfig()
    config.on_connection_create_start.append(_on_connection_start)
    config.on_request_headers_sent.append(_on_written)
    config.on_request_chunk_sent.append(_on_written)
    config.freeze()
    return config


def _kind(exc: BaseException) -> str:
    cause = getattr(exc, "os_error", None)
    if isinstance(exc, BlockedDestination) or isinstance(cause, BlockedDestination):
        return "blocked-destination"
    if isinstance(exc, TimeoutError | aiohttp.ServerTimeoutError):
        return "timeout"
    if isinstance(exc, aiohttp.ClientConnectorCertificateError | aiohttp.ClientSSLError):
        return "tls"
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return "dns"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return "connect"
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError
                  | aiohttp.ClientOSError):
        return "disconnected"
    return "connect"


def _message(exc: BaseException) -> str:
    cause = getattr(exc, "os_error", None)
    if isinstance(cause, BlockedDestination):
        return str(cause)
    text = str(exc) or type(exc).__name__
    return text[:500]


class WebhookClient:
    """One shared aiohttp session for every webhook delivery."""

    def __init__(self, config: WebhookConfig, concurrency: int,
                 resolver: AbstractResolver | None = None) -> None:
        """`resolver` answers DNS (the system's by default); its answers are checked."""
        self._config = config
        self._concurrency = concurrency
        self._resolver = resolver
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = _TimedConnector(
            resolver=GuardedResolver(self._config.allow_private_networks, self._resolver),
            limit=self._concurrency, ttl_dns_cache=10,
        )
        timeout = aiohttp.ClientTimeout(total=self._config.timeout_s,
                                        sock_connect=self._config.timeout_s)
        self._session = aiohttp.ClientSession(connector=connector, timeout=timeout,
                                              trust_env=False, auto_decompress=False,
                                              trace_configs=[_trace_config()],
                                              request_class=_TimedRequest)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _refusal(self, url: str) -> str | None:
        parts = urlsplit(url)
        if parts.scheme == "http" and not self._config.allow_http:
            return "http:// destinations are off (webhook.allow_http)"
        if parts.scheme not in ("http", "https"):
            return f"unsupported scheme {parts.scheme!r}"
        host = parts.hostname or ""
        if not self._config.allow_private_networks and is_forbidden_address(host):
            return f"{host} is a loopback, private or link-local address " \
                   "(webhook.allow_private_networks is off)"
        return None

    async def send(self, *, url: str, body: bytes, secret: str | SigningKeys,
                   delivery_id: str, event: str) -> Outcome:
        """Exactly one attempt; every failure is an Outcome, never an exception.

        `secret` is the policy's secret, or its SigningKeys (a rotation under way, the
        Standard Webhooks headers)."""
        assert self._session is not None, "webhook client not started"
        started = time.perf_counter()
        attempted_at = now_text()
        keys = secret if isinstance(secret, SigningKeys) else SigningKeys(secret)
        headers = {
            "Content-Type": "application/json",
            **signature_headers(keys, delivery_id=delivery_id, body=body),
            "X-DELIVERY-ID": delivery_id,
            "X-EVENT": f"access-request.{event}",
            "User-Agent": USER_AGENT,
        }
        # Recorded as sent, timestamp and signatures included (they are no secret: the
        # receiver sees them), so that a record can be checked with `gateway verify`.
        shown = dict(headers)
        clock = PhaseClock()

        def done(state: str, **fields: Any) -> Outcome:
            return Outcome(state=state, attempted_at=attempted_at,
                           finished_at=now_text(),
                           duration_ms=round((time.perf_counter() - started) * 1000),
                           request_headers=shown, **clock.fields(), **fields)

        refusal = self._refusal(url)
        if refusal:
            return done("failed", error_kind="blocked-destination", error_message=refusal)
        token = _CLOCK.set(clock)
        try:
            async with self._session.post(url, data=body, headers=headers,
                                          allow_redirects=False,
                                          trace_request_ctx=clock) as response:
                clock.enter("answered")
                raw = b""
                while len(raw) < SNIPPET_BYTES:
                    chunk = await response.content.read(SNIPPET_BYTES - len(raw))
                    if not chunk:
                        break
                    raw += chunk
                status = response.status
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            return done("failed", error_kind=_kind(exc), error_message=_message(exc))
        finally:
            _CLOCK.reset(token)
        text = snippet(raw)
        if 200 <= status < 300:
            return done("delivered", http_status=status, response_snippet=text)
        kind = "redirect" if 300 <= status < 400 else "http-status"
        return done("failed", http_status=status, response_snippet=text, error_kind=kind,
                    error_message=f"the receiver answered {status}")
