"""A parsed listing of access requests: what the listing language (gateway.requests.query)
makes of a query string and the store's listing (gateway.store.listing) runs.

It lives with the store, the lowest floor, so that the store runs it without importing the
request stage above it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

STATES = ("PENDING", "APPROVED", "REJECTED", "CANCELLED", "EXPIRED", "GRANTED", "ERROR",
          "REVOKED")
DEFAULT_LIMIT = 50


@dataclass(frozen=True)
class Condition:
    field: str  # a field of the listing language (gateway.requests.query.FIELDS)
    op: str  # eq, in, ne, gt, ge, lt, le; "none": recipients=none
    values: tuple[Any, ...]


@dataclass
class RequestQuery:
    conditions: list[Condition] = field(default_factory=list)
    order: list[tuple[str, bool]] = field(default_factory=lambda: [("createdAt", True)])
    limit: int = DEFAULT_LIMIT
    after: list[Any] | None = None  # the sort values of the previous page's last row
    scope: str = "own"  # own | actionable | all

    @property
    def order_text(self) -> str:
        return ",".join(("-" if desc else "") + key for key, desc in self.order)
