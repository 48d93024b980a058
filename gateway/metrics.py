"""Prometheus metrics (SPEC §13): one registry per application, never the library's global one,
so that two apps in one process (the tests, a restart) count apart.

Labels take values from fixed sets only (channels, states, error kinds, route templates, status
numbers): a label value is a time series for ever, and a raw path or id would make one per
request. The queued gauge and the requests without recipient are read from the database at
scrape time (`Metrics.scrape`), so that every instance on one PostgreSQL reports the shared
store, not what it happens to hold.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

from gateway.delivery.outcome import Outcome
from gateway.requests.transitions import ALLOWED
from gateway.store.database import after_commit

__all__ = ["CONTENT_TYPE", "ERROR_KINDS", "Metrics"]

# The classic text format (0.0.4): every Prometheus reads it; our names need no escaping.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
CHANNELS = ("webhook", "email", "notification")
STATES = ("PENDING", *sorted({to for _, to in ALLOWED}))
# The kinds each channel's attempts can end with (SPEC §6, and what the senders report beyond
# its list); anything else counts as "other", a delivered record as "none".
_MAIL_KINDS = ("render", "smtp-rejected", "smtp-connect", "smtp-auth", "timeout", "internal")
KINDS_BY_CHANNEL = {
    "webhook": ("http-status", "redirect", "timeout", "connect", "tls", "dns",
                "blocked-destination", "disconnected", "no-secret", "internal"),
    "email": _MAIL_KINDS,
    "notification": _MAIL_KINDS,
}
ERROR_KINDS = frozenset({k for kinds in KINDS_BY_CHANNEL.values() for k in kinds}
                        | {"interrupted", "other", "none"})
UNMATCHED = "unmatched"  # the route label of a request no route matched (404, 405)
# Attempts last milliseconds on loopback, seconds across the internet, up to the timeouts
# (10 s by default, at most 600).
DELIVERY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
QueuedCount = Callable[[], Awaitable[dict[str, int]]]


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        r = self.registry
        self.deliveries = Counter("gateway_deliveries", "Delivery records finished, by "
                                  "channel, state and error kind",
                                  ("channel", "state", "error_kind"), registry=r)
        self.delivery_seconds = Histogram("gateway_delivery_seconds", "Duration of delivery "
                                          "attempts", ("channel",), buckets=DELIVERY_BUCKETS,
                                          registry=r)
        self.queued = Gauge("gateway_deliveries_queued", "Delivery records waiting for their "
                            "attempt, in the shared store", ("channel",), registry=r)
        self.without_recipient = Gauge(
            "gateway_requests_without_recipient", "PENDING requests that no active person may "
            "approve (their recipients left the directory)", registry=r)
        self.transitions = Counter("gateway_transitions", "Committed request transitions, by "
                                   "the state reached (PENDING: created)", ("to",), registry=r)
        self.http_requests = Counter("gateway_http_requests", "HTTP requests answered, by "
                                     "route template and status", ("route", "status"),
                                     registry=r)
        # Every series an alert may look at exists from the start at 0: `increase()` sees the
        # first failure of a kind, which it would miss on a series born at 1.
        for channel in CHANNELS:
            self.deliveries.labels(channel, "delivered", "none")
            for kind in KINDS_BY_CHANNEL[channel]:
                self.deliveries.labels(channel, "failed", kind)
            self.delivery_seconds.labels(channel)
            self.queued.labels(channel)
        for state in STATES:
            self.transitions.labels(state)
        self._http: dict[tuple[str, int], Any] = {}

    def delivery_recorded(self, channel: str, outcome: Outcome) -> None:
        """An attempt's outcome was stored (the dispatcher calls this)."""
        self.recorded(channel, outcome.state, outcome.error_kind)
        self.delivery_seconds.labels(channel).observe(outcome.duration_ms / 1000)

    def recorded(self, channel: str, state: str, error_kind: str | None) -> None:
        """A record reached `state`: by its attempt, or failed when written (a mailhook that
        could not be rendered, counted by the outbox once committed)."""
        if state == "delivered" or error_kind is None:
            kind = "none" if state == "delivered" else "other"
        else:
            kind = error_kind if error_kind in ERROR_KINDS else "other"
        self.deliveries.labels(channel, state, kind).inc()

    def transition(self, conn: Any, before: dict[str, Any] | None, after: dict[str, Any],
                   at: str, actor: str) -> None:
        """A transition listener: counted once its transaction commits, not at all if it
        rolls back. A partial per transition: `after_commit` runs equal callbacks once."""
        state = after["state"] if after["state"] in STATES else "other"
        after_commit(conn, functools.partial(self.transitions.labels(state).inc, 1))

    @functools.cached_property
    def middleware(self) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
        """Counts every answer by route template and status. On the hot path: one dict
        lookup of the labelled child per request once (route, status) has been seen."""
        children = self._http
        counter = self.http_requests

        def count(request: web.Request, status: int) -> None:
            resource = request.match_info.route.resource
            key = (UNMATCHED if resource is None else resource.canonical, status)
            child = children.get(key)
            if child is None:
                child = children[key] = counter.labels(key[0], str(status))
            child.inc()

        @web.middleware
        async def count_requests(request: web.Request,
                                 handler: Handler) -> web.StreamResponse:
            try:
                response = await handler(request)
            except web.HTTPException as exc:
                count(request, exc.status)
                raise
            count(request, response.status)
            return response

        return count_requests

    async def scrape(self, queued_count: QueuedCount,
                     without_recipient: Callable[[], Awaitable[int]] | None = None) -> bytes:
        """The text exposition, with the queue depth (and the requests without an active
        recipient) read now."""
        counts = await queued_count()
        for channel in CHANNELS:
            self.queued.labels(channel).set(counts.get(channel, 0))
        if without_recipient is not None:
            self.without_recipient.set(await without_recipient())
        return generate_latest(self.registry)
