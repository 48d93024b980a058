"""The state machine of SPEC §3 and the one place where a request changes state.

`apply` writes the new state, its activity entry, its audit event and, through the
listeners (the delivery outbox), the records of whatever the transition triggers, all on the
caller's connection, so they commit together or not at all.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

from gateway.errors import Conflict
from gateway.store import audit
from gateway.store import requests as request_store

ALLOWED = {
    ("PENDING", "APPROVED"), ("PENDING", "REJECTED"), ("PENDING", "CANCELLED"),
    ("PENDING", "EXPIRED"), ("APPROVED", "GRANTED"), ("APPROVED", "ERROR"),
    ("ERROR", "GRANTED"), ("APPROVED", "REVOKED"), ("GRANTED", "REVOKED"),
}

# listener(conn, before, after, at, actor): runs inside the transition's transaction.
Listener = Callable[[sqlite3.Connection, dict[str, Any] | None, dict[str, Any], str, str], None]


PUBLIC_FIELDS = (
    "id", "requestedBy", "target", "action", "resource", "policyCode", "state", "reason",
    "useCase", "extraInformation", "audience", "recipients", "createdAt", "processedAt",
    "processedBy", "remarks", "expiresAt", "accessExpiresAt", "shareable", "scope", "cascades",
)


def public(request: dict[str, Any]) -> dict[str, Any]:
    """The JSON representation of SPEC §2, in its order, without bookkeeping fields."""
    return {k: request[k] for k in PUBLIC_FIELDS}


def check(request: dict[str, Any], to_state: str) -> None:
    if (request["state"], to_state) not in ALLOWED:
        raise Conflict(
            f"a {request['state']} request cannot become {to_state}",
            code="invalid-transition", state=request["state"], requested=to_state,
        )


def record_created(conn: sqlite3.Connection, request: dict[str, Any], *, actor: str,
                   changes: dict[str, Any] | None, listeners: Sequence[Listener]) -> None:
    at = request["createdAt"]
    request_store.add_activity(conn, request["id"], at=at, actor=actor, from_state=None,
                               to_state="PENDING", comment=request["reason"], changes=changes)
    audit.add(conn, at=at, actor=actor, type="request.created",
              subject=f"request:{request['id']}", after=public(request))
    for listener in listeners:
        listener(conn, None, request, at, actor)


def apply(conn: sqlite3.Connection, request: dict[str, Any], to_state: str, *, actor: str,
          at: str, comment: str | None, fields: dict[str, Any] | None = None,
          changes: dict[str, Any] | None = None,
          listeners: Sequence[Listener] = ()) -> dict[str, Any]:
    check(request, to_state)
    update = {"state": to_state, **(fields or {})}
    request_store.update(conn, request["id"], update, at)
    after = {**request, **update}
    request_store.add_activity(conn, request["id"], at=at, actor=actor,
                               from_state=request["state"], to_state=to_state,
                               comment=comment, changes=changes)
    audit.add(conn, at=at, actor=actor, type=f"request.{to_state.lower()}",
              subject=f"request:{request['id']}", before=public(request), after=public(after))
    for listener in listeners:
        listener(conn, request, after, at, actor)
    return after
