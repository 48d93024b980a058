"""SMTP deliveries through aiosmtplib, over a small pool of reused connections.

Why a pool: a new connection per message halves the rate. A pooled connection idle for a while
is checked with NOOP before use, so that a server that dropped it does not turn into a failed
delivery; once MAIL FROM is sent, the attempt is the delivery's one attempt, whatever happens.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from typing import Any

import aiosmtplib

from gateway.config import MailConfig
from gateway.delivery.phases import PhaseClock
from gateway.hooks.mail_message import build_message, message_id
from gateway.store.outcome import Outcome
from gateway.timeutil import now_text

IDLE_CHECK_S = 5.0


class MailClient:
    def __init__(self, config: MailConfig, pool_size: int = 4) -> None:
        self._config = config
        self.pool_size = pool_size
        self._slots = asyncio.Semaphore(pool_size)
        self._idle: list[tuple[aiosmtplib.SMTP, float]] = []

    async def close(self) -> None:
        while self._idle:
            smtp, _ = self._idle.pop()
            with contextlib.suppress(Exception):
                await smtp.quit(timeout=2)
            smtp.close()

    async def _connect(self, clock: PhaseClock) -> aiosmtplib.SMTP:
        """Resolve, connect and secure apart, so that the clock tells the phases apart."""
        cfg = self._config
        loop = asyncio.get_running_loop()
        try:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a
            # cancellation (a shutdown's) that arrives as the awaited call finishes.
            clock.enter("dns")
            async with asyncio.timeout(cfg.timeout_s):
                infos = await loop.getaddrinfo(cfg.host, cfg.port, type=socket.SOCK_STREAM)
            clock.enter("connect")
            async with asyncio.timeout(cfg.timeout_s):
                sock = await _open_socket(loop, infos, clock)
        except OSError as exc:
            if isinstance(exc, TimeoutError):
                raise
            raise aiosmtplib.SMTPConnectError(
                f"Error connecting to {cfg.host} on port {cfg.port}: {exc}") from exc
        clock.peer(sock.getpeername())
        if cfg.security == "tls":
            clock.enter("tls")
        smtp = aiosmtplib.SMTP(hostname=cfg.host, sock=sock, timeout=cfg.timeout_s,
                               use_tls=cfg.security == "tls", start_tls=False)
        try:
            await smtp.connect()
            if cfg.security == "starttls":
                clock.enter("tls")
                await smtp.starttls()
            if cfg.username:
                password = os.environ.get(cfg.password_env or "", "")
                await smtp.login(cfg.username, password)
        except BaseException:
            smtp.close()
            sock.close()
            raise
        clock.leave("tls" if cfg.security != "none" else "connect")
        return smtp

    async def _connection(self, clock: PhaseClock) -> aiosmtplib.SMTP:
        while self._idle:
            smtp, since = self._idle.pop()
            if not smtp.is_connected:
                continue
            if time.monotonic() - since < IDLE_CHECK_S:
                return smtp
            try:
                await smtp.noop()
                return smtp
            except (aiosmtplib.SMTPException, OSError):
                smtp.close()
        return await self._connect(clock)

    async def send(self, *, to: str, subject: str, body: str, delivery_id: str,
                   request_key: str, status: str,
                   extra_headers: dict[str, str] | None = None,
                   html: str | None = None, profile: str = "standard",
                   lines: str | None = None) -> Outcome:
        """Exactly one attempt; every failure is an Outcome, never an exception. `profile`
        and `lines`: a mailhook's mail profile (SPEC §5), see `build_message`."""
        started = time.perf_counter()
        attempted_at = now_text()
        shown: dict[str, Any] = {}
        clock = PhaseClock()

        def done(state: str, **fields: Any) -> Outcome:
            return Outcome(state=state, attempted_at=attempted_at,
                           finished_at=now_text(),
                           duration_ms=round((time.perf_counter() - started) * 1000),
                           request_headers=shown, **clock.fields(), **fields)

        async with self._slots:
            try:
                smtp = await self._connection(clock)
            except aiosmtplib.SMTPAuthenticationError as exc:
                return done("failed", smtp_code=exc.code, error_kind="smtp-auth",
                            error_message=exc.message[:500])
            except (aiosmtplib.SMTPTimeoutError, TimeoutError) as exc:
                return done("failed", error_kind="timeout", error_message=str(exc)[:500])
            except (aiosmtplib.SMTPException, OSError) as exc:
                return done("failed", error_kind="smtp-connect",
                            error_message=(str(exc) or type(exc).__name__)[:500])
            eightbit = smtp.supports_extension("8bitmime")
            message, headers = build_message(
                sender=self._config.sender, to=to, subject=subject, body=body,
                message_id=message_id(delivery_id, self._config.sender),
                request_key=request_key, status=status, eightbit=eightbit,
                extra_headers=extra_headers, html=html, profile=profile, lines=lines,
            )
            shown.update(headers)
            if smtp.transport is not None:
                clock.peer(smtp.transport.get_extra_info("peername"))
            options = ["BODY=8BITMIME"] if eightbit and not message.isascii() else []
            try:
                await smtp.mail(self._config.sender, options=options)
                await smtp.rcpt(to)
                # From DATA on the server may have the message: "sent" until its final answer.
                clock.enter("sent")
                reply = await smtp.data(message)
                clock.enter("answered")
            except aiosmtplib.SMTPResponseException as exc:
                clock.enter("answered")
                # A refusal (sender, recipient, data): the connection itself is still usable.
                with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                    await smtp.rset()
                    self._idle.append((smtp, time.monotonic()))
                return done("failed", smtp_code=exc.code, error_kind="smtp-rejected",
                            error_message=exc.message[:500])
            except (aiosmtplib.SMTPTimeoutError, TimeoutError) as exc:
                smtp.close()
                return done("failed", error_kind="timeout", error_message=str(exc)[:500])
            except (aiosmtplib.SMTPException, OSError) as exc:
                smtp.close()
                return done("failed", error_kind="smtp-connect",
                            error_message=(str(exc) or type(exc).__name__)[:500])
            self._idle.append((smtp, time.monotonic()))
            return done("delivered", smtp_code=reply.code,
                        response_snippet=reply.message[:1024])


async def _open_socket(loop: asyncio.AbstractEventLoop, infos: list[Any],
                       clock: PhaseClock) -> socket.socket:
    """A connected socket to the first address of `infos` that accepts. The clock notes
    each address as it is tried: a refusal or a timeout shows the last one."""
    error: OSError = OSError("no address to connect to")
    for family, kind, proto, _, address in infos:
        clock.peer(address)
        sock = socket.socket(family, kind, proto)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, address)
            return sock
        except OSError as exc:
            sock.close()
            error = exc
        except BaseException:
            sock.close()
            raise
    raise error
