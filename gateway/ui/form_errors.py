"""The API's refusals, said to people: the form's label instead of the field path, the problem
in words ("Reason: choose a use case" rather than "useCase: required: policy uc asks …").

Only the presentation changes: the pages run the API's checks and operations and catch the
same `GatewayError`; the API keeps answering its own messages, field paths and codes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from gateway.errors import GatewayError
from gateway.timeutil import HUMAN_DURATION_HINT

__all__ = ["LABELS", "FormError", "explain"]

# A form field: (its label, the id of the control to put the focus on, or None).
Field = tuple[str, str | None]

LABELS: Mapping[str, Field] = {
    "resource": ("Item", None),
    "action": ("Action", None),
    "target": ("For", "target"),
    "reason": ("Reason", "reason"),
    "requestReason": ("Reason", "reason"),
    "useCase": ("Reason", "useCase-choice"),  # the policy asks for its reason as a use case
    "extraInformation": ("Extra information", None),
    "audience": ("Audience", "audience"),
    "duration": ("Duration", None),
    "expiration": ("End date", None),
    "decision": ("Decision", None),
    "remarks": ("Comment", "remarks"),
    "requestId": ("Request", "f-requestId"),
}

# What a required field asks of a person.
_REQUIRED = {
    "resource": "choose an item",
    "reason": "say why you need this access",
    "requestReason": "say why you need this access",
    "useCase": "choose a use case",
    "extraInformation.values": "choose at least one",
    "decision": "choose Approve or Reject",
}
_INDEX = re.compile(r"\[\d+\]")


# (pattern of the API's words after the field path, how to say it) — first match wins.
_SAYINGS: tuple[tuple[re.Pattern[str], Callable[[str, re.Match[str]], str]], ...] = tuple(
    (re.compile(pattern), say) for pattern, say in (
        (r"^(required|must not be empty)\b",
         lambda field, m: _REQUIRED.get(field) or _REQUIRED.get(field.rpartition(".")[2])
         or "fill this in"),
        (r"^at most (\d+) characters",
         lambda field, m: f"too long: at most {int(m.group(1)):,} characters"),
        (r"^at most (\d+) entries", lambda field, m: f"choose at most {m.group(1)}"),
        (r"^contains a control character",
         lambda field, m: "contains an invisible control character: type it again without"),
        (r"^contains a lone surrogate",
         lambda field, m: "contains characters that are not text: type it again"),
        (r"^contains duplicates", lambda field, m: "a value is chosen twice"),
        (r"^no such use case",
         lambda field, m: "that use case no longer exists: choose another"),
        (r"^must be values of the use case's property",
         lambda field, m: "choose among the values listed for this use case"),
        (r"takes a free-text reason, not a use case",
         lambda field, m: "this item asks for a reason in words, not a use case"),
        (r"has no extra field",
         lambda field, m: "this item asks for no extra information"),
        (r"^policy \S+ asks for (\S+)",
         lambda field, m: "choose values from this use case"),
        (r"^give duration or expiration, not both",
         lambda field, m: "give a duration or an end date, not both"),
        (r"^must be in the future", lambda field, m: "must be in the future"),
        (r"^only when approving", lambda field, m: "only when approving"),
        (r"^expected an ISO 8601 duration",
         lambda field, m: f"write a duration {HUMAN_DURATION_HINT}"),
        (r"^expected an RFC 3339 time",
         lambda field, m: "write a date and time such as 2026-01-31T17:00:00Z"),
        (r"^unknown field", lambda field, m: "this form has no such field"),
    ))

# Refusals without a field, by code: what the person can do about it.
_BY_CODE = {
    "duplicate-pending": "You already have a pending request for this item: "
                         "see My requests to follow it or change its reason.",
    "no-recipients": "Nobody may approve requests for this item yet: it has no approver "
                     "for its policy. Ask its owner or an admin.",
    "no-policy": "Access requests are off for this item (it has no policy). "
                 "Ask its owner or an admin.",
}


@dataclass(frozen=True)
class FormError:
    """What a page shows for a refusal: `label: message`, the label linking to `control`."""

    message: str
    label: str | None = None
    control: str | None = None
    field: str | None = None  # the API's field path, without indexes ("extraInformation.values")
    status: int = 400
    code: str = ""


def _field_of(error: GatewayError) -> str | None:
    field = error.details.get("field")
    if not isinstance(field, str) or not field:
        return None
    return _INDEX.sub("", field.removeprefix("body."))


def _label(field: str, labels: Mapping[str, Field]) -> Field:
    """The label of `field` or of the nearest enclosing field the form knows."""
    path = field
    while path:
        if path in labels:
            return labels[path]
        path = path.rpartition(".")[0]
    return LABELS.get(field.partition(".")[0], (field, None))


def explain(error: GatewayError, labels: Mapping[str, Field] | None = None) -> FormError:
    """`error` for the person who sent the form; `labels` are the form's own words for its
    fields (on top of `LABELS`), e.g. the label of the use case's extra property."""
    known: dict[str, Field] = {**LABELS, **(labels or {})}
    field = _field_of(error)
    raw = error.details.get("field")
    if field is None:
        message = _BY_CODE.get(error.code) or _transition(error) or error.message
        return FormError(_sentence(message), status=error.status, code=error.code)
    label, control = _label(field, known)
    rest = error.message
    for prefix in (raw, field):
        if isinstance(prefix, str) and rest.startswith(prefix + ": "):
            rest = rest[len(prefix) + 2:]
            break
    message = rest
    for pattern, say in _SAYINGS:
        found = pattern.search(rest)
        if found:
            message = say(field, found)
            break
    return FormError(message, label=label, control=control, field=field,
                     status=error.status, code=error.code)


def _transition(error: GatewayError) -> str | None:
    """"a REJECTED request cannot become APPROVED" as "This request is rejected now: it can
    no longer be approved." (someone else decided first, or it expired)."""
    state = error.details.get("state")
    if error.code != "invalid-transition" or not isinstance(state, str):
        return None
    requested = error.details.get("requested")
    done = f"{requested.lower()}" if isinstance(requested, str) else "changed"
    return f"This request is {state.lower()} now: it can no longer be {done}."


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]
