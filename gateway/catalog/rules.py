"""Policies, items and use cases (SPEC §2): the checks of their bodies and their public shape.

Records are camelCase dicts, the same shape as the API's, so that the API, the store and the
configuration loader speak one language. A policy record holds its webhook secret; `public_policy`
is the only way a policy leaves the process, and it never carries the secret.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from gateway import patterns
from gateway.config import WebhookConfig
from gateway.delivery.destinations import url_problem
from gateway.errors import Conflict, InvalidField
from gateway.signing import SigningKeys
from gateway.timeutil import format_time, parse_api_duration, parse_time, utcnow
from gateway.validation import LONG, SHORT, Fields

POLICY_CODE = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
ITEM_TYPES = ("dataset", "visualization", "data-product", "custom")
REASON_FORMATS = ("free-text", "use-case")
HOOK_TYPES = ("none", "email", "webhook")
EMAIL_PROFILES = ("standard", "jira", "servicenow")  # SPEC §5: what a ticketing tool needs
HOOK_STATUSES = (
    "pending", "approved", "rejected", "cancelled", "expired", "granted", "error", "revoked",
)
DEFAULT_HOOK_STATUSES = ["pending", "approved", "rejected"]
MAX_SECRET = 4096
KEY_MAX = 512


def _rotation(fields: Fields, secret: str, old: dict[str, Any], now: datetime,
              ) -> tuple[str | None, str | None]:
    """(previous secret, until when) after this write (SPEC §4, secret rotation).

    `previousSecretValidFor` keeps the secret this body replaces signing for that long. A
    window under way survives writes that keep the secret; a new secret without the key
    ends it (the switch is immediate, as before rotation existed).
    """
    valid_for = fields.text("previousSecretValidFor", max_len=64)
    window = None
    if valid_for is not None:
        try:
            window = parse_api_duration(valid_for)
        except ValueError as exc:
            raise InvalidField(fields.name("previousSecretValidFor"), str(exc)) from None
    old_secret = old.get("secret") if old.get("type") == "webhook" else None
    if old_secret and secret != old_secret:
        if window is None:
            return None, None
        return old_secret, format_time(now + window)
    until = old.get("previousSecretExpiresAt")
    if old_secret and old.get("previousSecret") and until and until > format_time(now):
        return old["previousSecret"], until
    return None, None


def _hook(fields: Fields | None, previous: dict[str, Any] | None,
          webhook: WebhookConfig, now: datetime) -> dict[str, Any]:
    if fields is None:
        return {"type": "none", "email": None, "url": None, "secret": None,
                "statuses": list(DEFAULT_HOOK_STATUSES), "emailProfile": None,
                "standardWebhooks": False, "previousSecret": None,
                "previousSecretExpiresAt": None}
    fields.only(["type", "email", "url", "secret", "secretSet", "statuses", "emailProfile",
                 "standardWebhooks", "previousSecretValidFor", "previousSecretExpiresAt"])
    kind = fields.choice("type", HOOK_TYPES)
    fields.boolean("secretSet")  # ignored: a read policy may be sent back
    shown_until = fields.text("previousSecretExpiresAt", max_len=64)
    if shown_until is not None and not patterns.matches("TIME", shown_until):
        raise InvalidField(fields.name("previousSecretExpiresAt"), "expected an RFC 3339 time")
    statuses = fields.texts("statuses") if fields.has("statuses") else list(DEFAULT_HOOK_STATUSES)
    for i, status in enumerate(statuses):
        if status not in HOOK_STATUSES:
            raise InvalidField(f"{fields.name('statuses')}[{i}]",
                               "expected one of " + ", ".join(HOOK_STATUSES))
    hook: dict[str, Any] = {"type": kind, "email": None, "url": None, "secret": None,
                            "statuses": statuses, "emailProfile": None,
                            "standardWebhooks": False, "previousSecret": None,
                            "previousSecretExpiresAt": None}
    if kind == "email":
        hook["email"] = fields.email("email", required=True)
        hook["emailProfile"] = fields.choice("emailProfile", EMAIL_PROFILES,
                                             default="standard")
    else:
        for key in ("email", "emailProfile"):
            if fields.has(key):
                raise InvalidField(fields.name(key), "only with type email")
    standard = fields.boolean("standardWebhooks")
    if kind == "webhook":
        url = fields.text("url", required=True, max_len=2048)
        assert url is not None
        problem = None if patterns.matches("WEBHOOK_URL", url) else \
            "expected an http(s):// URL without user info or fragment"
        problem = problem or url_problem(url, webhook)
        if problem:
            raise InvalidField(fields.name("url"), problem)
        hook["url"] = url
        secret = fields.raw("secret")
        old = previous or {}
        if secret is None:
            secret = old.get("secret") if old.get("type") == "webhook" else None
            if not secret and previous is None:
                raise InvalidField(fields.name("secret"), "required for a webhook")
            if not secret:  # a PUT may keep a secret, but there is none to keep
                raise Conflict("the stored policy has no webhook secret to keep: give one",
                               code="secret-required", field=fields.name("secret"))
        else:
            if not isinstance(secret, str) or not 1 <= len(secret) <= MAX_SECRET:
                raise InvalidField(fields.name("secret"), f"1 to {MAX_SECRET} characters")
            try:
                secret.encode("utf-8")
            except UnicodeEncodeError:
                raise InvalidField(fields.name("secret"), "not valid Unicode text") from None
        hook["secret"] = secret
        hook["standardWebhooks"] = standard
        hook["previousSecret"], hook["previousSecretExpiresAt"] = _rotation(
            fields, secret, old, now)
    else:
        for key in ("url", "secret", "previousSecretValidFor"):
            if fields.has(key):
                raise InvalidField(fields.name(key), "only with type webhook")
        if standard:
            raise InvalidField(fields.name("standardWebhooks"), "only with type webhook")
    return hook


def signing_keys(hook: dict[str, Any] | None) -> SigningKeys | None:
    """What a stored policy's webhook deliveries are signed with (None: no secret).

    Policies stored before rotation and Standard Webhooks lack those keys: they read as off.
    """
    secret = (hook or {}).get("secret")
    if not secret:
        return None
    assert hook is not None
    until = hook.get("previousSecretExpiresAt")
    return SigningKeys(secret=secret, previous=hook.get("previousSecret"),
                       previous_until=parse_time(until).timestamp() if until else None,
                       standard=bool(hook.get("standardWebhooks")))


def check_policy(body: Any, *, code: str | None, previous: dict[str, Any] | None,
                 webhook: WebhookConfig, now: datetime | None = None) -> dict[str, Any]:
    """A policy body (POST, or PUT with `code` from the path) made into a record; `now`
    starts a secret rotation's window."""
    f = Fields(body).only([
        "code", "name", "description", "itemTypes", "reasonFormat", "extraField",
        "approverRoles", "emailNotifications", "hook",
    ])
    given = f.text("code", required=code is None, pattern=POLICY_CODE,
                   hint="expected [a-z0-9][a-z0-9._-]{0,63}")
    if code is not None and given is not None and given != code:
        raise Conflict("code: does not match the code in the path", code="code-mismatch",
                       field="code")
    reason_format = f.choice("reasonFormat", REASON_FORMATS, default="free-text")
    extra_field = f.text("extraField")
    if extra_field is not None and reason_format != "use-case":
        raise InvalidField("extraField", "only with reasonFormat use-case")
    item_types = f.texts("itemTypes") if f.has("itemTypes") else list(ITEM_TYPES)
    if not item_types:
        raise InvalidField("itemTypes", "must not be empty")
    for i, item_type in enumerate(item_types):
        if item_type not in ITEM_TYPES:
            raise InvalidField(f"itemTypes[{i}]", "expected one of " + ", ".join(ITEM_TYPES))
    approver_roles = f.texts("approverRoles")
    if not approver_roles:
        raise InvalidField("approverRoles", "required: at least one responsibility code")
    return {
        "code": code if code is not None else given,
        "name": f.text("name", required=True),
        "description": f.text("description", default="", max_len=LONG, single_line=False),
        "itemTypes": item_types,
        "reasonFormat": reason_format,
        "extraField": extra_field,
        "approverRoles": approver_roles,
        "emailNotifications": f.boolean("emailNotifications"),
        "hook": _hook(f.object("hook"), previous.get("hook") if previous else None, webhook,
                      now or utcnow()),
    }


def public_policy(policy: dict[str, Any]) -> dict[str, Any]:
    """The policy as it leaves the process: its secrets (current and previous) never do."""
    hook = dict(policy["hook"])
    hook["secretSet"] = bool(hook.pop("secret", None))
    hook.pop("previousSecret", None)
    hook.setdefault("emailProfile", "standard" if hook["type"] == "email" else None)
    hook.setdefault("standardWebhooks", False)
    hook.setdefault("previousSecretExpiresAt", None)
    return {**policy, "hook": hook}


def _responsibilities(f: Fields, *, teams: bool = False) -> list[dict[str, str]]:
    """`{"label", "code", "userEmail"}`; an item's may name a team instead of a user
    (`{"label", "code", "team"}`: its active members are recipients, SPEC §14)."""
    out = []
    for r in f.objects("responsibilities"):
        r.only(["label", "code", "userEmail", *(["team"] if teams else [])])
        label = r.text("label", default="")
        code = r.text("code", required=True)
        if teams and r.has("team"):
            if r.has("userEmail"):
                raise InvalidField(r.name("team"), "give userEmail or team, not both")
            out.append({"label": label, "code": code, "team": r.text("team", required=True)})
            continue
        out.append({"label": label, "code": code,
                    "userEmail": r.email("userEmail", required=True)})
    return out


def _properties(f: Fields) -> list[dict[str, Any]]:
    out = []
    codes: set[str] = set()
    for p in f.objects("properties"):
        p.only(["label", "code", "values"])
        code = p.text("code", required=True)
        if code in codes:
            raise Conflict(f"{p.name('code')}: duplicate property code",
                           code="duplicate-property-code", field=p.name("code"))
        codes.add(code)
        out.append({
            "label": p.text("label", default=""),
            "code": code,
            "values": p.texts("values", max_len=LONG, unique=False),
        })
    return out


def _key(f: Fields, key: str | None) -> str:
    given = f.text("key", required=key is None, max_len=KEY_MAX)
    if key is not None and given is not None and given != key:
        raise Conflict("key: does not match the key in the path", code="key-mismatch",
                       field="key")
    value = key if key is not None else given
    assert value is not None
    if not patterns.matches("KEY", value):
        raise InvalidField("key", "must not be empty or start or end with spaces")
    return value


def _url(f: Fields, key: str) -> str:
    value = f.text(key, default="", max_len=2048, pattern=patterns.COMPILED["ITEM_URL"],
                   hint="expected an http:// or https:// URL")
    assert value is not None
    return value


def check_item(body: Any, *, key: str | None) -> dict[str, Any]:
    f = Fields(body).only([
        "key", "name", "technicalName", "url", "summary", "type", "responsibilities",
        "properties", "policyCode",
    ])
    return {
        "key": _key(f, key),
        "name": f.text("name", required=True),
        "technicalName": f.text("technicalName", default=""),
        "url": _url(f, "url"),
        "summary": f.text("summary", default="", max_len=LONG, single_line=False),
        "type": f.choice("type", ITEM_TYPES),
        "responsibilities": _responsibilities(f, teams=True),
        "properties": _properties(f),
        "policyCode": f.text("policyCode", pattern=POLICY_CODE,
                             hint="expected a policy code"),
    }


def check_use_case(body: Any, *, key: str | None) -> dict[str, Any]:
    f = Fields(body).only(["key", "name", "summary", "responsibilities", "properties"])
    return {
        "key": _key(f, key),
        "name": f.text("name", required=True, max_len=SHORT),
        "summary": f.text("summary", default="", max_len=LONG, single_line=False),
        "responsibilities": _responsibilities(f),
        "properties": _properties(f),
    }


def check_policy_link(body: Any) -> str | None:
    """The body of `PUT /v1/items/{key}/policy`: `{"policyCode": "..."|null}`."""
    f = Fields(body).only(["policyCode"])
    if "policyCode" not in f.data:
        raise InvalidField("policyCode", "required (null turns access requests off)")
    return f.text("policyCode", pattern=POLICY_CODE, hint="expected a policy code")
