"""The operations on access requests (SPEC §3): each runs inside one write transaction.

Bodies are checked on the event loop (`check_*`), before a write is queued; the rules that
need the database (the item, its policy, the use case, the current state) run in the
operation itself, on the writer thread, so that what is checked is what is committed.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from gateway.catalog.rules import KEY_MAX
from gateway.directory.people import Person
from gateway.errors import Conflict, InvalidField, NotFound
from gateway.requests import permissions, transitions
from gateway.requests.transitions import Listener, public
from gateway.store import audit, catalog
from gateway.store import directory as directory_store
from gateway.store import requests as request_store
from gateway.timeutil import (
    format_time,
    now_text,
    parse_api_duration,
    parse_duration,
    parse_time,
    utcnow,
)
from gateway.validation import LONG, Fields

ACTION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
CREATE_FIELDS = ("action", "resource", "reason", "useCase", "extraInformation", "audience",
                 "expiration", "duration", "shareable", "scope", "cascades")
SYSTEM = "system"
EXPIRY_BATCH = 500


def _access_end(f: Fields, *, must_be_after: Any) -> tuple[str | None, str | None]:
    """(duration, expiration) from a body; at most one of them, both checked."""
    duration = f.text("duration", max_len=64)
    expiration = f.text("expiration", max_len=64)
    if duration is not None and expiration is not None:
        raise InvalidField("expiration", "give duration or expiration, not both")
    if duration is not None:
        try:
            parse_api_duration(duration)
        except ValueError as exc:
            raise InvalidField("duration", str(exc)) from None
    if expiration is not None:
        try:
            when = parse_time(expiration)
        except ValueError as exc:
            raise InvalidField("expiration", str(exc)) from None
        if when <= must_be_after:  # a rule of time, not of form: the document cannot say it
            raise Conflict("expiration: must be in the future", code="expiration-passed",
                           field="expiration")
        expiration = format_time(when)
    return duration, expiration


def _stored_duration(text: str) -> timedelta:
    """A duration checked when it was given: as the API takes them now, or as it took them
    before (lower case, fractions of seconds)."""
    try:
        return parse_api_duration(text)
    except ValueError:
        return parse_duration(text)


def check_create(body: Any) -> dict[str, Any]:
    f = Fields(body).only(CREATE_FIELDS)
    duration, expiration = _access_end(f, must_be_after=utcnow())
    extra = f.object("extraInformation")
    extra_values = None
    if extra is not None:
        extra.only(["code", "values"])
        extra.text("code")
        extra_values = extra.texts("values", max_len=LONG)
    return {
        "action": f.text("action", default="read-data", pattern=ACTION,
                         hint="expected letters, digits and . _ : - (at most 64)"),
        "resource": f.text("resource", required=True, max_len=KEY_MAX),
        "reason": f.text("reason", max_len=LONG, single_line=False),
        "useCase": f.text("useCase", max_len=KEY_MAX),
        "extraCode": extra.raw("code") if extra is not None else None,
        "extraValues": extra_values,
        "audience": f.text("audience", default="", max_len=LONG, single_line=False),
        "shareable": f.boolean("shareable"),
        "scope": f.text("scope", max_len=LONG),
        "cascades": f.boolean("cascades"),
        "duration": duration,
        "expiration": expiration,
    }


def check_reason(body: Any) -> str:
    f = Fields(body).only(["requestReason"])
    reason = f.text("requestReason", required=True, max_len=LONG, single_line=False)
    assert reason is not None
    return reason


def check_process(body: Any) -> dict[str, Any]:
    f = Fields(body).only(["decision", "remarks", "duration", "expiration"])
    decision = f.choice("decision", ("approve", "reject"))
    duration, expiration = _access_end(f, must_be_after=utcnow())
    if decision == "reject" and (duration or expiration):
        raise InvalidField("duration" if duration else "expiration", "only when approving")
    return {"decision": decision, "remarks": f.text("remarks", max_len=LONG, single_line=False),
            "duration": duration, "expiration": expiration}


def check_fulfilment(body: Any) -> dict[str, Any]:
    f = Fields(body).only(["status", "message"])
    return {"status": f.choice("status", ("granted", "error")),
            "message": f.text("message", max_len=LONG, single_line=False)}


# Approver codes with a meaning of their own in a policy's approverRoles (SPEC §14).
MANAGER = "manager"  # the target user's manager
ADMINS = "admins"  # the gateway's admins


def _recipients(conn: sqlite3.Connection, item: dict[str, Any], policy: dict[str, Any],
                requester: str, target: dict[str, str]) -> list[str]:
    """Who may approve: the item's responsibilities in the policy's approver roles (a user,
    or every active member of a team), the target user's manager, the admins. People the
    directory knows as inactive are left out, and so is the requester."""
    roles = policy["approverRoles"]
    named: list[str] = []
    for r in item["responsibilities"]:
        if r["code"] not in roles:
            continue
        if r.get("team") is not None:
            named += directory_store.active_members(conn, r["team"])
        else:
            named.append(r["userEmail"])
    if MANAGER in roles and target["type"] == "user":
        manager = directory_store.manager_of(conn, target["id"])
        if manager is not None:
            named.append(manager)
    if ADMINS in roles:
        named += directory_store.active_admins(conn)
    inactive = directory_store.inactive_people(conn, named)
    seen: set[str] = {requester.lower()}
    out = []
    for email in named:
        if email.lower() not in seen and email.lower() not in inactive:
            seen.add(email.lower())
            out.append(email)
    return out


def _rule(field: str, message: str, **details: Any) -> Conflict:
    return Conflict(f"{field}: {message}", code="policy-rule", field=field, **details)


def _reason_rules(conn: sqlite3.Connection, policy: dict[str, Any],
                  draft: dict[str, Any]) -> dict[str, Any] | None:
    """Check reason / use case / extra field against the policy; return extraInformation.

    Refusals are 409 (a rule of the stored policy), not 400: the body is well-formed, and
    the API document, which says what is well-formed, cannot know the policy."""
    code = policy["code"]
    if policy["reasonFormat"] == "free-text":
        if not (draft["reason"] or "").strip():
            raise _rule("reason", f"required: policy {code} asks for a free-text reason")
        if draft["useCase"] is not None or draft["extraValues"] is not None:
            raise _rule("useCase", f"policy {code} takes a free-text reason, "
                                          "not a use case")
        return None
    if draft["useCase"] is None:
        raise _rule("useCase", f"required: policy {code} asks for a use case")
    use_case = catalog.cached(conn, catalog.USE_CASES, draft["useCase"])
    if use_case is None:
        raise _rule("useCase", "no such use case")
    extra_field = policy["extraField"]
    if extra_field is None:
        if draft["extraValues"] is not None:
            raise _rule("extraInformation", f"policy {code} has no extra field")
        return None
    if draft["extraCode"] not in (None, extra_field):
        raise _rule("extraInformation.code", f"policy {code} asks for {extra_field}")
    if not draft["extraValues"]:
        raise _rule("extraInformation.values",
                           f"required: policy {code} asks for values of {extra_field}")
    prop = next((p for p in use_case["properties"] if p["code"] == extra_field), None)
    allowed = prop["values"] if prop else []
    unknown = [v for v in draft["extraValues"] if v not in allowed]
    if unknown:
        raise _rule("extraInformation.values",
                           f"must be values of the use case's property {extra_field}",
                           allowed=allowed, unknown=unknown)
    return {"code": extra_field, "values": draft["extraValues"]}


NOTICE_BEFORE = timedelta(hours=1)
Expiring = Callable[[sqlite3.Connection, dict[str, Any], str], None]


def _no_notice(conn: sqlite3.Connection, request: dict[str, Any], at: str) -> None:
    """Without an outbox (no hooks wired), an ending access needs no notice."""


@dataclass
class Lifecycle:
    pending_ttl: timedelta
    listeners: Sequence[Listener] = field(default_factory=tuple)
    expiring: Expiring = _no_notice  # records the "access ends in one hour" notice

    def _load(self, conn: sqlite3.Connection, request_id: str) -> dict[str, Any]:
        request = request_store.get(conn, request_id, lock=True)
        if request is None:
            raise NotFound(f"no access request {request_id}", code="request-not-found")
        return request

    def create(self, conn: sqlite3.Connection, user: Person, target_type: str, target_id: str,
               draft: dict[str, Any]) -> dict[str, Any]:
        item = catalog.cached(conn, catalog.ITEMS, draft["resource"])
        if item is None:
            raise NotFound("no item with this key", code="item-not-found",
                           field="resource")
        if item["policyCode"] is None:
            raise Conflict("access requests are off for this item (it has no policy)",
                           code="no-policy", resource=item["key"])
        policy = catalog.cached(conn, catalog.POLICIES, item["policyCode"])
        assert policy is not None  # the foreign key guarantees it
        if item["type"] not in policy["itemTypes"]:
            raise Conflict(f"policy {policy['code']} does not cover items of type {item['type']}",
                           code="item-type-not-covered")
        extra = _reason_rules(conn, policy, draft)
        recipients = _recipients(conn, item, policy, user.email,
                                 {"type": target_type, "id": target_id})
        if not recipients:
            raise Conflict("nobody may approve this request: the item has no responsibility "
                           "in the policy's approver roles held by an active person",
                           code="no-recipients",
                           approverRoles=policy["approverRoles"])
        now = utcnow()
        request = {
            "requestedBy": user.email, "target": {"type": target_type, "id": target_id},
            "action": draft["action"], "resource": item["key"], "policyCode": policy["code"],
            "state": "PENDING", "reason": draft["reason"], "useCase": draft["useCase"],
            "extraInformation": extra, "audience": draft["audience"], "recipients": recipients,
            "createdAt": format_time(now), "processedAt": None, "processedBy": None,
            "remarks": None, "expiresAt": format_time(now + self.pending_ttl),
            "accessExpiresAt": None, "shareable": draft["shareable"], "scope": draft["scope"],
            "cascades": draft["cascades"], "requestedDuration": draft["duration"],
            "requestedExpiration": draft["expiration"],
        }
        try:
            request["id"] = request_store.insert(conn, request)
        except conn.IntegrityError:
            raise Conflict("a pending request for this action, resource and target exists",
                           code="duplicate-pending") from None
        asked = {k: draft[k] for k in ("duration", "expiration") if draft[k]}
        transitions.record_created(conn, request, actor=user.email, changes=asked or None,
                                   listeners=self.listeners)
        return public(request)

    def update_reason(self, conn: sqlite3.Connection, user: Person, request_id: str,
                      reason: str) -> dict[str, Any]:
        request = self._load(conn, request_id)
        permissions.check_requester(user, request, "update")
        if request["state"] != "PENDING":
            raise Conflict(f"a {request['state']} request cannot be changed",
                           code="invalid-transition", state=request["state"])
        at = now_text()
        request_store.update(conn, request_id, {"reason": reason}, at)
        after = {**request, "reason": reason}
        request_store.add_activity(conn, request_id, at=at, actor=user.email,
                                   from_state="PENDING", to_state="PENDING",
                                   comment="reason updated",
                                   changes={"reason": {"from": request["reason"], "to": reason}})
        audit.add(conn, at=at, actor=user.email, type="request.reason-updated",
                  subject=f"request:{request_id}", before=public(request), after=public(after))
        return public(after)

    def cancel(self, conn: sqlite3.Connection, user: Person, request_id: str) -> dict[str, Any]:
        request = self._load(conn, request_id)
        permissions.check_requester(user, request, "cancel")
        after = transitions.apply(conn, request, "CANCELLED", actor=user.email,
                                  at=now_text(), comment="cancelled by the requester",
                                  listeners=self.listeners)
        return public(after)

    def process(self, conn: sqlite3.Connection, user: Person, request_id: str,
                decision: dict[str, Any]) -> dict[str, Any]:
        request = self._load(conn, request_id)
        permissions.check_processor(user, request)
        now = utcnow()
        at = format_time(now)
        fields: dict[str, Any] = {"processedAt": at, "processedBy": user.email,
                                  "remarks": decision["remarks"]}
        changes: dict[str, Any] = {}
        if decision["decision"] == "approve":
            to_state = "APPROVED"
            duration = decision["duration"] or request["requestedDuration"]
            expiration = decision["expiration"] or request["requestedExpiration"]
            if decision["duration"] or decision["expiration"]:
                expiration = decision["expiration"]
                duration = decision["duration"]
                changes = {
                    "duration": {"requested": request["requestedDuration"],
                                 "approved": decision["duration"]},
                    "expiration": {"requested": request["requestedExpiration"],
                                   "approved": decision["expiration"]},
                }
            if duration:
                fields["accessExpiresAt"] = format_time(now + _stored_duration(duration))
            elif expiration:
                fields["accessExpiresAt"] = expiration
        else:
            to_state = "REJECTED"
        after = transitions.apply(conn, request, to_state, actor=user.email, at=at,
                                  comment=decision["remarks"], fields=fields,
                                  changes=changes or None, listeners=self.listeners)
        return public(after)

    def fulfil(self, conn: sqlite3.Connection, user: Person, request_id: str,
               report: dict[str, Any]) -> dict[str, Any]:
        request = self._load(conn, request_id)
        to_state = "GRANTED" if report["status"] == "granted" else "ERROR"
        after = transitions.apply(conn, request, to_state, actor=user.email,
                                  at=now_text(), comment=report["message"],
                                  listeners=self.listeners)
        return public(after)

    def _notices(self, conn: sqlite3.Connection, now: datetime) -> int:
        """Record each "access ends in one hour" notice once; the stored mark survives
        restarts. Access granted for an hour or less gets none: the approval said it all."""
        at = format_time(now)
        due = request_store.expiry_notices_due(conn, format_time(now + NOTICE_BEFORE),
                                               EXPIRY_BATCH)
        for request in due:
            request_store.update(conn, request["id"], {"expiryNoticeAt": at}, at)
            start = parse_time(request["processedAt"] or request["createdAt"])
            if parse_time(request["accessExpiresAt"]) - start > NOTICE_BEFORE:
                self.expiring(conn, request, at)
        return len(due)

    def expire_due(self, conn: sqlite3.Connection) -> tuple[int, str | None]:
        """Expire pending requests, revoke ended access, record one-hour notices; return
        (count, next due time)."""
        moment = utcnow()
        now = format_time(moment)
        noticed = self._notices(conn, moment)
        due = request_store.due(conn, now, EXPIRY_BATCH)
        for request in due:
            if request["state"] == "PENDING":
                transitions.apply(conn, request, "EXPIRED", actor=SYSTEM, at=now,
                                  comment="no decision before the pending deadline",
                                  listeners=self.listeners)
            else:
                transitions.apply(conn, request, "REVOKED", actor=SYSTEM, at=now,
                                  comment="access period ended", listeners=self.listeners)
        upcoming = [t for t in (request_store.next_due(conn),) if t is not None]
        notice = request_store.next_notice_due(conn)
        if notice is not None:
            upcoming.append(format_time(parse_time(notice) - NOTICE_BEFORE))
        return max(len(due), noticed), min(upcoming) if upcoming else None
