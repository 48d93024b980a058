"""The HTTP server: aiohttp's, with what its parser refuses answered in the API's error shape.

aiohttp refuses a request line or a header over its limits, and anything that is not HTTP,
before any middleware runs: its protocol answers in plain text and logs the refusal as an
ERROR with a traceback, so that every port scanner fills the log. `Protocol.handle_error` is
the seam: the refusal leaves as the error shape of SPEC §9 (414 for a request line over
`max_line_size`, 431 for a header over `max_field_size` or more than `max_headers` headers,
400 for the rest) and the log gets one DEBUG line. `Runner` is `web.AppRunner` serving with
that protocol, and `run` is `web.run_app` with that runner; aiohttp offers no public way to
choose the protocol class, so `Runner` reaches into `AppRunner._make_server` (a test pins it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMethod, HttpProcessingError, LineTooLong
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest
from aiohttp.web_server import Server

from gateway.api.http import error_answer
from gateway.errors import GatewayError

log = logging.getLogger("gateway.api")

TOO_MANY_HEADERS = "Too many headers received"  # aiohttp's message, both of its parsers
# A request line starts with a method token and a space; a header line has a colon first.
_REQUEST_LINE = re.compile(rb"\n[!#$%&'*+.^_`|~0-9A-Za-z-]+ ")


class ParserRefusal(GatewayError):
    """What aiohttp's parser refused, before a handler or a middleware could see it."""


def refusal(exc: BaseException | None, request_line: bool, limits: dict[str, int]
            ) -> ParserRefusal:
    """The error for one parser exception. `request_line` says whether a line that was too
    long is the request line (the parser's exception does not say which line it was)."""
    if isinstance(exc, LineTooLong) and request_line:
        error = ParserRefusal(f"the request line is longer than {limits['line']} bytes",
                              code="request-line-too-long", limit=limits["line"])
        error.status = 414
    elif isinstance(exc, LineTooLong):
        error = ParserRefusal(f"a request header is longer than {limits['field']} bytes",
                              code="header-too-large", limit=limits["field"])
        error.status = 431
    elif isinstance(exc, HttpProcessingError) and exc.message == TOO_MANY_HEADERS:
        error = ParserRefusal(f"the request has more than {limits['headers']} headers",
                              code="too-many-headers", limit=limits["headers"])
        error.status = 431
    else:
        # aiohttp's own message quotes the client's bytes; the code and a fixed sentence
        # are all a client needs, and nothing it sent is echoed back.
        error = ParserRefusal("the request is not valid HTTP/1.1", code="malformed-request")
        error.status = 400
    return error


class Protocol(RequestHandler):
    """aiohttp's protocol, but its refusals leave in the API's error shape."""

    __slots__ = ("_before", "_chunk", "_long_request_line")
    # Enough of what came before a chunk to find the start of a request line that began in
    # an earlier chunk: aiohttp's line limit, the method and a line break.
    KEEP = 8190 + 64

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._before = b"\n"  # the connection starts at a line's start
        self._chunk = b""
        self._long_request_line: bool | None = None  # once the parser refused a line

    def data_received(self, data: bytes) -> None:
        if self._long_request_line is not None:  # refused: the answer is on its way
            super().data_received(data)
            return
        # The chunk is kept by reference, and at most KEEP bytes of what came before it.
        keep = max(self.KEEP, self.max_line_size + 64)
        if len(self._chunk) >= keep:
            self._before = self._chunk[-keep:]
        elif self._chunk:
            self._before = (self._before + self._chunk)[-keep:]
        self._chunk = data
        super().data_received(data)
        # The refusal is answered later, by the connection's task, when more bytes may have
        # come: which line was too long is told now, from the bytes that made it so.
        if self._messages:
            exc = getattr(self._messages[-1][0], "exc", None)
            if isinstance(exc, LineTooLong):
                self._long_request_line = self._is_request_line(exc)

    def _is_request_line(self, exc: LineTooLong) -> bool:
        """aiohttp's exception quotes the start of what was too long: the target of a request
        line or a header's name or value (its C parser), or the whole line (its Python
        parser). Found in what the connection received, the line it is on tells: a request
        line starts with a method and a space, a header line with a name and a colon."""
        excerpt = exc.args[0] if exc.args else b""
        if isinstance(excerpt, str):
            excerpt = excerpt.encode("latin-1", "replace")
        excerpt = bytes(excerpt).removesuffix(b"...")[:64]
        if not excerpt:
            return False
        window = self._before + self._chunk
        at = window.find(excerpt)
        while at >= 0:
            start = window.rfind(b"\n", 0, at)
            if start >= 0 and _REQUEST_LINE.match(window, start):
                return True
            at = window.find(excerpt, at + 1)
        return False

    def handle_error(self, request: BaseRequest, status: int = 500,
                     exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        if request.writer.output_size > 0:  # as aiohttp: the answer is under way already
            return super().handle_error(request, status, exc, message)
        if status == 400 and isinstance(exc, HttpProcessingError):
            limits = {"line": self.max_line_size, "field": self.max_field_size,
                      "headers": self.max_headers}
            error = refusal(exc, bool(self._long_request_line), limits)
            # One line, no traceback: scanners and broken clients are not the gateway's
            # failure. A client sending HTTPS to this port is the usual BadHttpMethod.
            log.debug("refused a request from %s: %s (%s)", request.remote, error.code,
                      "not HTTP" if isinstance(exc, BadHttpMethod) else type(exc).__name__)
        elif status == 504:
            error = GatewayError("the request took too long", code="timeout")
            error.status = 504
        else:
            log.error("unexpected error on %s %s", request.method, request.path,
                      exc_info=exc)
            error = GatewayError("internal error; the gateway's log has the details")
        response = error_answer(error)
        response.force_close()
        return response


class _Server(Server):
    def __call__(self) -> RequestHandler:
        return Protocol(self, loop=self._loop, **self._kwargs)


class Runner(web.AppRunner):
    """`web.AppRunner` whose connections are served by `Protocol`."""

    async def _make_server(self) -> Server:
        server = await super()._make_server()
        server.__class__ = _Server  # the same server, handing out our protocol
        return server


def run(app: web.Application, *, host: str, port: int, loop: asyncio.AbstractEventLoop,
        **kwargs: Any) -> None:
    """`web.run_app(app, host=..., port=..., loop=..., print=None, **kwargs)` with `Runner`:
    SIGINT and SIGTERM stop taking requests, then the app's cleanup runs (draining the
    deliveries under way) before the loop closes."""
    kwargs = {"keepalive_timeout": 75.0, "shutdown_timeout": 60.0, **kwargs}

    async def serve() -> None:
        runner = Runner(app, handle_signals=True, **kwargs)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
            await asyncio.Event().wait()  # until a signal raises GracefulExit
        finally:
            await runner.cleanup()

    main = loop.create_task(serve())
    try:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(main)
    except (web.GracefulExit, KeyboardInterrupt):
        pass
    finally:
        try:
            if not main.done():
                main.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    loop.run_until_complete(main)
        finally:
            _cancel_rest(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()


def _cancel_rest(loop: asyncio.AbstractEventLoop) -> None:
    tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
