"""Who may do what with an access request (SPEC §3, §9). Refusals are 403s."""

from __future__ import annotations

from typing import Any

from gateway.directory.people import Person
from gateway.errors import Forbidden


def same(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and a.lower() == b.lower()


def is_recipient(user: Person, request: dict[str, Any]) -> bool:
    return any(same(user.email, r) for r in request["recipients"])


def is_requester(user: Person, request: dict[str, Any]) -> bool:
    return same(user.email, request["requestedBy"])


def can_view(user: Person, request: dict[str, Any]) -> bool:
    target = request["target"]
    return (
        user.admin
        or user.integration
        or is_requester(user, request)
        or is_recipient(user, request)
        or (target["type"] == "user" and same(target["id"], user.email))
        or (target["type"] == "team" and target["id"] in user.teams)
        or (target["type"] == "role" and target["id"] in user.roles)
    )


def check_view(user: Person, request: dict[str, Any]) -> None:
    if not can_view(user, request):
        raise Forbidden("you may not see this request")


def check_target(user: Person, target_type: str, target_id: str) -> None:
    """Users request for themselves, their teams and their roles; admins for anyone."""
    if user.admin:
        return
    if target_type == "user" and not same(target_id, user.email):
        raise Forbidden("you may request access for yourself only")
    if target_type == "team" and target_id not in user.teams:
        raise Forbidden("you may request access only for a team you belong to")
    if target_type == "role" and target_id not in user.roles:
        raise Forbidden("you may request access only for a role you hold")


def check_requester(user: Person, request: dict[str, Any], what: str) -> None:
    if not is_requester(user, request):
        raise Forbidden(f"only the requester may {what} this request")


def check_processor(user: Person, request: dict[str, Any]) -> None:
    if is_requester(user, request):
        raise Forbidden("the requester may not approve or reject their own request")
    if not (user.admin or is_recipient(user, request)):
        raise Forbidden("only the request's recipients and admins may approve or reject it")


def check_fulfiller(user: Person) -> None:
    if not (user.integration or user.admin):
        raise Forbidden("only integration users and admins report fulfilment")


def check_admin(user: Person) -> None:
    if not user.admin:
        raise Forbidden("admins only")
