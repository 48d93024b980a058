"""What happens to a person's requests when they leave (SPEC §14), in one function that the
users API, SCIM and the start-up sync of the configuration's users call, inside the same
transaction as the change to the person.

Each request moves through the ordinary transition (`transitions.apply`), so its activity,
audit event, hooks and notices are exactly those of any other transition: the ticketing tool
hears "Revoked" and removes the access.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gateway.directory.people import normalise_email
from gateway.requests import transitions
from gateway.requests.transitions import Listener
from gateway.store import audit
from gateway.store import requests as request_store
from gateway.timeutil import now_text

SYSTEM = "system"
REQUESTER_GONE = "requester deprovisioned"
TARGET_GONE = "target deprovisioned"
RECIPIENT_GONE = "recipient deprovisioned"


@dataclass(frozen=True)
class Deprovisioned:
    cancelled: tuple[str, ...]  # request ids
    revoked: tuple[str, ...]
    recipient_of: tuple[str, ...]  # pending requests they no longer approve

    def public(self) -> dict[str, list[str]]:
        return {"cancelled": list(self.cancelled), "revoked": list(self.revoked),
                "recipientRemovedFrom": list(self.recipient_of)}


def deprovision(conn: Any, email: str, *, listeners: Sequence[Listener]) -> Deprovisioned:
    """`email` became inactive or was deleted: cancel the PENDING requests they made, revoke
    the APPROVED or GRANTED access they were given, and take them off the recipients of
    pending requests. Safe to run twice: the second run finds nothing left to do."""
    email = normalise_email(email)
    at = now_text()
    cancelled = []
    for request in request_store.pending_requested_by(conn, email):
        transitions.apply(conn, request, "CANCELLED", actor=SYSTEM, at=at,
                          comment=REQUESTER_GONE, listeners=listeners)
        cancelled.append(request["id"])
    revoked = []
    for request in request_store.access_of(conn, email):
        transitions.apply(conn, request, "REVOKED", actor=SYSTEM, at=at,
                          comment=TARGET_GONE, listeners=listeners)
        revoked.append(request["id"])
    recipient_of = []
    for request in request_store.pending_with_recipient(conn, email):
        kept = [r for r in request["recipients"] if normalise_email(r) != email]
        request_store.set_recipients(conn, request["id"], kept, at)
        request_store.add_activity(conn, request["id"], at=at, actor=SYSTEM,
                                   from_state="PENDING", to_state="PENDING",
                                   comment=RECIPIENT_GONE,
                                   changes={"recipients": {"from": request["recipients"],
                                                           "to": kept}})
        audit.add(conn, at=at, actor=SYSTEM, type="request.recipients-updated",
                  subject=f"request:{request['id']}",
                  before=transitions.public(request),
                  after=transitions.public({**request, "recipients": kept}))
        recipient_of.append(request["id"])
    return Deprovisioned(tuple(cancelled), tuple(revoked), tuple(recipient_of))
