"""The outcome of one delivery attempt, as the senders report it and the store records it.

It lives with the store, the lowest floor, so that the store records it without importing
the delivery stage above it; the senders (gateway.delivery) build it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Outcome:
    state: str  # delivered | failed
    attempted_at: str
    finished_at: str
    duration_ms: int
    http_status: int | None = None
    smtp_code: int | None = None
    error_kind: str | None = None
    error_message: str | None = None
    response_snippet: str | None = None
    request_headers: dict[str, Any] = field(default_factory=dict)
    phase: str | None = None  # dns | connect | tls | sent | answered: how far it got
    phase_ms: dict[str, int] = field(default_factory=dict)  # only the phases reached
    remote_address: str | None = None  # host:port actually used
