"""Human notifications (SPEC §7): who hears about a transition, and what they read.

People are addressed only by addresses the gateway knows (configured users, item and
use-case responsibilities), never by anything from a request's free text, and never about
their own actions. Each mail has a plain-text and an HTML part (autoescaped, no remote
images); times are UTC, ISO 8601.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import jinja2

from gateway.hooks.mail_message import header_text
from gateway.resources import resource_dir

TITLES = {
    "submitted": "Access requested", "approved": "Approved", "rejected": "Rejected",
    "cancelled": "Cancelled", "expired": "Expired", "revoked": "Access ended",
    "expiring": "Access ends in one hour",
}


def audience(kind: str, request: dict[str, Any]) -> list[str]:
    """Who is told: recipients of new and cancelled requests, otherwise the requester."""
    if kind in ("submitted", "cancelled"):
        return list(request["recipients"])
    return [request["requestedBy"]]


def kind_of(before: dict[str, Any] | None, after: dict[str, Any]) -> str | None:
    if before is None:
        return "submitted"
    state = after["state"].lower()
    return state if state in TITLES else None


def known_addresses(users: Iterable[str], *records: dict[str, Any] | None) -> set[str]:
    known = {u.lower() for u in users}
    for record in records:
        for responsibility in (record or {}).get("responsibilities", []):
            if responsibility.get("userEmail"):  # a team's members are people: known
                known.add(responsibility["userEmail"].lower())
    return known


def addressees(kind: str, request: dict[str, Any], actor: str, known: set[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for email in audience(kind, request):
        key = email.lower()
        if key == actor.lower() or key not in known or key in seen:
            continue
        seen.add(key)
        out.append(email)
    return out


class NotificationRenderer:
    def __init__(self, subject_prefix: str) -> None:
        self._prefix = subject_prefix
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(resource_dir("templates")),
            autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",),
                                                default_for_string=True),
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
        )
        self._text = env.get_template("notification.txt.j2")
        self._html = env.get_template("notification.html.j2")

    def subject(self, kind: str, request: dict[str, Any], item: dict[str, Any]) -> str:
        return header_text(f"{self._prefix} {TITLES[kind]}: {request['action']} on "
                           f"{item['name']} (#{request['id']})")

    def render(self, kind: str, request: dict[str, Any],
               item: dict[str, Any]) -> dict[str, str]:
        context = {"kind": kind, "title": TITLES[kind], "request": request, "item": item}
        return {"subject": self.subject(kind, request, item),
                "text": self._text.render(**context), "html": self._html.render(**context)}
