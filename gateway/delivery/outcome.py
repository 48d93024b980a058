"""The outcome of one delivery attempt, as the senders report it and the store records it."""

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


SNIPPET_BYTES = 1024


def snippet(raw: bytes) -> str:
    return raw[:SNIPPET_BYTES].decode("utf-8", "replace")
