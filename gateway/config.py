"""The YAML configuration of SPEC §8, read once and checked whole before anything starts.

Every refusal names the key (`mail.port`, `users[1].token_env`) so that an operator can fix
the file from one line of output. Relative paths are taken relative to the config file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from gateway.errors import ConfigError
from gateway.timeutil import parse_duration

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")
_SHA256 = re.compile(r"[0-9a-f]{64}")
MIN_TOKEN_LENGTH = 16


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    max_body_bytes: int = 1048576
    allow_insecure_cookies: bool = False  # the web inbox's cookies without Secure (plain http)


@dataclass(frozen=True)
class StoreConfig:
    """`path` (SQLite, the default) or `url` (PostgreSQL, SPEC §10): exactly one is set."""

    path: str | None = "./gateway.db"
    synchronous: str = "full"
    url: str | None = None
    password_env: str | None = None
    password: str | None = field(default=None, repr=False)  # read from password_env
    pool_size: int = 4


@dataclass(frozen=True)
class MailConfig:
    host: str = "127.0.0.1"
    port: int = 1025
    security: str = "none"
    username: str | None = None
    password_env: str | None = None
    sender: str = "gateway@example.com"
    subject_prefix: str = "[Gateway]"
    timeout_s: float = 10.0


@dataclass(frozen=True)
class WebhookConfig:
    timeout_s: float = 10.0
    allow_http: bool = False
    allow_private_networks: bool = False


@dataclass(frozen=True)
class DeliveryConfig:
    concurrency: int = 32
    shutdown_grace_s: float = 10.0
    lease_s: float = 30.0


@dataclass(frozen=True)
class RequestsConfig:
    pending_ttl: timedelta = timedelta(days=30)


@dataclass(frozen=True)
class OidcConfig:
    """`ui.oidc` (SPEC §14): the identity provider people sign in to the web inbox with.
    `redirect_uri` is needed only where the gateway cannot see its own public address (a
    proxy that rewrites the Host header); otherwise it is this gateway's /ui/oidc/callback."""

    issuer: str
    client_id: str
    client_secret_env: str | None = None
    client_secret: str | None = field(default=None, repr=False)  # read from client_secret_env
    scopes: tuple[str, ...] = ("openid", "email", "profile")
    email_claim: str = "email"
    groups_claim: str | None = None
    button: str = "Sign in with your organisation"
    redirect_uri: str | None = None


@dataclass(frozen=True)
class UIConfig:
    """The web inbox (SPEC §12): how long a sign-in lasts, and the SSO proxy's header."""

    session_ttl: timedelta = timedelta(hours=8)
    trusted_header: str | None = None
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    oidc: OidcConfig | None = None


@dataclass(frozen=True)
class ApiOidcConfig:
    """`api.oidc` (SPEC §14): the API also accepts this issuer's JWT access tokens for
    `audience`; `email_claim` names the person."""

    issuer: str
    audience: str
    email_claim: str = "email"


@dataclass(frozen=True)
class ApiConfig:
    oidc: ApiOidcConfig | None = None


@dataclass(frozen=True)
class MetricsConfig:
    """`GET /metrics` (SPEC §13): admins, or a scraper with the token read from `token_env`
    (a scraper needs no user account, and its token opens nothing else)."""

    token_env: str | None = None
    token: str | None = field(default=None, repr=False)  # read from token_env


@dataclass(frozen=True)
class User:
    email: str
    token_sha256: str = field(repr=False)
    admin: bool = False
    integration: bool = False
    teams: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    display_name: str | None = None
    manager: str | None = None  # the e-mail of the user's manager (approver code `manager`)


@dataclass(frozen=True)
class DirectoryConfig:
    """`directory:` (SPEC §14). `jit` (create people at their first OIDC sign-in) and
    `scim.token_env` (the bearer token of /scim/v2/) are read here for the features that
    use them. `scim.admin_group` / `scim.integration_group` name the SCIM groups whose
    members are admins / integrations: without them SCIM grants neither."""

    jit: bool = False
    scim_token_env: str | None = None
    scim_token: str | None = field(default=None, repr=False)  # read from scim_token_env
    scim_admin_group: str | None = None
    scim_integration_group: str | None = None


@dataclass(frozen=True)
class Config:
    server: ServerConfig = ServerConfig()
    store: StoreConfig = StoreConfig()
    mail: MailConfig = MailConfig()
    webhook: WebhookConfig = WebhookConfig()
    delivery: DeliveryConfig = DeliveryConfig()
    requests: RequestsConfig = RequestsConfig()
    ui: UIConfig = UIConfig()
    api: ApiConfig = ApiConfig()
    metrics: MetricsConfig = MetricsConfig()
    directory: DirectoryConfig = DirectoryConfig()
    users: tuple[User, ...] = ()
    policies: tuple[dict[str, Any], ...] = ()
    items: tuple[dict[str, Any], ...] = ()
    use_cases: tuple[dict[str, Any], ...] = ()


# --- value checkers: each returns the clean value or raises ValueError with a sentence ---

Check = Callable[[Any], Any]


def _string(value: Any) -> str:
    if not isinstance(value, str) or not value or any(c in value for c in "\r\n\x00"):
        raise ValueError("expected a non-empty single-line string")
    return value


def _optional_string(value: Any) -> str | None:
    return None if value is None else _string(value)


def _integer(low: int, high: int) -> Check:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"expected an integer from {low} to {high}")
        return value

    return check


def _number(low: float, high: float) -> Check:
    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"expected a number from {low} to {high}")
        if not low <= value <= high:
            raise ValueError(f"expected a number from {low} to {high}")
        return float(value)

    return check


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("expected true or false")
    return value


def _choice(*options: str) -> Check:
    def check(value: Any) -> str:
        if value not in options:
            raise ValueError("expected one of " + ", ".join(options))
        return value

    return check


def _email(value: Any) -> str:
    if not isinstance(value, str) or not _EMAIL.fullmatch(value) or len(value) > 254:
        raise ValueError("expected an e-mail address")
    return value


def _duration(value: Any) -> timedelta:
    return parse_duration(value)


def _postgres_url(value: Any) -> str:
    """postgresql://USER@HOST:PORT/DB: the password comes from password_env, never the file."""
    text = _string(value)
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise ValueError("expected postgresql://USER@HOST:PORT/DATABASE") from None
    if parts.scheme not in ("postgresql", "postgres") or not parts.hostname \
            or not parts.path.strip("/") or "/" in parts.path.strip("/"):
        raise ValueError("expected postgresql://USER@HOST:PORT/DATABASE")
    if parts.password is not None:
        raise ValueError("put no password in the URL: name an environment variable in "
                         "store.password_env")
    del port
    return text


_HEADER_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}")


def _header_name(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _HEADER_NAME.fullmatch(value):
        raise ValueError("expected an HTTP header name such as X-Forwarded-Email, or null")
    return value


def _networks(value: Any) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    if not isinstance(value, list):
        raise ValueError("expected a list of IP addresses or CIDR networks")
    networks = []
    for entry in value:
        try:
            networks.append(ipaddress.ip_network(_string(entry), strict=False))
        except ValueError:
            raise ValueError(f"{entry!r} is not an IP address or CIDR network") from None
    return tuple(networks)


def _session_ttl(value: Any) -> timedelta:
    ttl = parse_duration(value)
    if not timedelta(minutes=1) <= ttl <= timedelta(days=30):
        raise ValueError("expected a duration from PT1M to P30D")
    return ttl


def _string_list(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ValueError("expected a list of strings")
    return tuple(_string(v) for v in value)


def _issuer(value: Any) -> str:
    """An OpenID issuer: https (http only on loopback, for tests), no query or fragment."""
    from authlib.common.security import is_secure_transport

    text = _string(value)
    try:
        parts = urlsplit(text)
    except ValueError:
        raise ValueError("expected the issuer's URL, such as https://idp.example.com") from None
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.query \
            or parts.fragment or not is_secure_transport(text):
        raise ValueError("expected the issuer's https URL (without query or fragment), "
                         "such as https://idp.example.com")
    return text


def _url(value: Any) -> str:
    text = _string(value)
    try:
        parts = urlsplit(text)
    except ValueError:
        raise ValueError("expected an http(s) URL") from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError("expected an http(s) URL")
    return text


def _scopes(value: Any) -> tuple[str, ...]:
    scopes = _string_list(value)
    if "openid" not in scopes:
        raise ValueError("expected a list of scopes that includes openid")
    if any(" " in scope for scope in scopes):
        raise ValueError("expected one scope per list entry (no spaces)")
    return scopes


def _claim_name(value: Any) -> str:
    text = _string(value)
    if len(text) > 200:
        raise ValueError("expected a claim name")
    return text


def _optional_claim_name(value: Any) -> str | None:
    return None if value is None else _claim_name(value)


_OIDC_KEYS: dict[str, tuple[str, Check]] = {
    "issuer": ("issuer", _issuer),
    "client_id": ("client_id", _string),
    "client_secret_env": ("client_secret_env", _optional_string),
    "scopes": ("scopes", _scopes),
    "email_claim": ("email_claim", _claim_name),
    "groups_claim": ("groups_claim", _optional_claim_name),
    "button": ("button", _string),
    "redirect_uri": ("redirect_uri", _url),
}
_API_OIDC_KEYS: dict[str, tuple[str, Check]] = {
    "issuer": ("issuer", _issuer),
    "audience": ("audience", _string),
    "email_claim": ("email_claim", _claim_name),
}


def _subsection(raw: Any, where: str, cls: type, spec: dict[str, tuple[str, Check]],
                required: tuple[str, ...]) -> Any:
    """A mapping nested in a section (`ui.oidc`): every refusal names its whole path."""
    if raw is None:
        return None
    data = _mapping(raw, where)
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key not in spec:
            raise ConfigError(f"{where}.{key}: unknown key (expected one of {', '.join(spec)})")
        attr, check = spec[key]
        values[attr] = _checked(where, key, check, value)
    for key in required:
        if key not in values:
            raise ConfigError(f"{where}.{key}: missing")
    return cls(**values)


def _ui_oidc(raw: Any) -> OidcConfig | None:
    return _subsection(raw, "ui.oidc", OidcConfig, _OIDC_KEYS, ("issuer", "client_id"))


def _api_oidc(raw: Any) -> ApiOidcConfig | None:
    return _subsection(raw, "api.oidc", ApiOidcConfig, _API_OIDC_KEYS, ("issuer", "audience"))


_SECTIONS: dict[str, tuple[type, dict[str, tuple[str, Check]]]] = {
    "server": (
        ServerConfig,
        {
            "host": ("host", _string),
            "port": ("port", _integer(0, 65535)),
            "max_body_bytes": ("max_body_bytes", _integer(1024, 64 * 1024 * 1024)),
            "allow_insecure_cookies": ("allow_insecure_cookies", _boolean),
        },
    ),
    "store": (
        StoreConfig,
        {
            "path": ("path", _string),
            "synchronous": ("synchronous", _choice("full", "normal")),
            "url": ("url", _postgres_url),
            "password_env": ("password_env", _optional_string),
            "pool_size": ("pool_size", _integer(2, 100)),
        },
    ),
    "mail": (
        MailConfig,
        {
            "host": ("host", _string),
            "port": ("port", _integer(1, 65535)),
            "security": ("security", _choice("none", "starttls", "tls")),
            "username": ("username", _optional_string),
            "password_env": ("password_env", _optional_string),
            "from": ("sender", _email),
            "subject_prefix": ("subject_prefix", _string),
            "timeout_s": ("timeout_s", _number(0.1, 600)),
        },
    ),
    "webhook": (
        WebhookConfig,
        {
            "timeout_s": ("timeout_s", _number(0.1, 600)),
            "allow_http": ("allow_http", _boolean),
            "allow_private_networks": ("allow_private_networks", _boolean),
        },
    ),
    "delivery": (
        DeliveryConfig,
        {
            "concurrency": ("concurrency", _integer(1, 1024)),
            "shutdown_grace_s": ("shutdown_grace_s", _number(0, 3600)),
            "lease_s": ("lease_s", _number(1, 3600)),
        },
    ),
    "requests": (RequestsConfig, {"pending_ttl": ("pending_ttl", _duration)}),
    "ui": (
        UIConfig,
        {
            "session_ttl": ("session_ttl", _session_ttl),
            "trusted_header": ("trusted_header", _header_name),
            "trusted_proxies": ("trusted_proxies", _networks),
            "oidc": ("oidc", _ui_oidc),
        },
    ),
    "api": (ApiConfig, {"oidc": ("oidc", _api_oidc)}),
    "metrics": (MetricsConfig, {"token_env": ("token_env", _optional_string)}),
}

_USER_KEYS = {
    "email", "token", "token_env", "token_sha256", "admin", "integration", "teams", "roles",
    "display_name", "manager",
}


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a mapping")
    return value


def _section(raw: Any, name: str) -> Any:
    cls, spec = _SECTIONS[name]
    values: dict[str, Any] = {}
    for key, value in _mapping(raw, name).items():
        if key not in spec:
            raise ConfigError(f"{name}.{key}: unknown key (expected one of {', '.join(spec)})")
        attr, check = spec[key]
        values[attr] = _checked(name, key, check, value)
    return cls(**values)


def _checked(where: str, key: str, check: Check, value: Any) -> Any:
    try:
        return check(value)
    except ValueError as exc:
        raise ConfigError(f"{where}.{key}: {exc}") from None


def _user(raw: Any, where: str, env: dict[str, str]) -> User:
    data = _mapping(raw, where)
    for key in data:
        if key not in _USER_KEYS:
            expected = ", ".join(sorted(_USER_KEYS))
            raise ConfigError(f"{where}.{key}: unknown key (expected one of {expected})")
    if "email" not in data:
        raise ConfigError(f"{where}.email: missing")
    given = [k for k in ("token", "token_env", "token_sha256") if data.get(k) is not None]
    if len(given) != 1:
        raise ConfigError(f"{where}.token: give exactly one of token, token_env, token_sha256")
    kind = given[0]
    email = _checked(where, "email", _email, data["email"])
    secret = _checked(where, kind, _string, data[kind])
    if kind == "token_env":
        if not env.get(secret):
            raise ConfigError(f"{where}.token_env: environment variable {secret} is not set")
        secret = env[secret]
    if kind == "token_sha256":
        if not _SHA256.fullmatch(secret):
            raise ConfigError(f"{where}.token_sha256: expected 64 lowercase hex digits")
        digest = secret
    elif len(secret) < MIN_TOKEN_LENGTH:
        raise ConfigError(f"{where}.{kind}: a token needs at least {MIN_TOKEN_LENGTH} characters")
    else:
        digest = hashlib.sha256(secret.encode()).hexdigest()
    flags = {k: _checked(where, k, _boolean, data.get(k, False)) for k in ("admin", "integration")}
    teams = _checked(where, "teams", _string_list, data.get("teams", []))
    roles = _checked(where, "roles", _string_list, data.get("roles", []))
    display_name = _checked(where, "display_name", _optional_string, data.get("display_name"))
    manager = data.get("manager")
    if manager is not None:
        manager = _checked(where, "manager", _email, manager)
    return User(email=email, token_sha256=digest, teams=teams, roles=roles,
                display_name=display_name, manager=manager, **flags)


_SCIM_KEYS = ("token_env", "admin_group", "integration_group")


def _directory(raw: Any, env: dict[str, str], user_digests: set[str],
               metrics_token: str | None) -> DirectoryConfig:
    data = _mapping(raw, "directory")
    for key in data:
        if key not in ("jit", "scim"):
            raise ConfigError(f"directory.{key}: unknown key (expected one of jit, scim)")
    jit = _checked("directory", "jit", _boolean, data.get("jit", False))
    scim = _mapping(data.get("scim"), "directory.scim")
    for key in scim:
        if key not in _SCIM_KEYS:
            raise ConfigError(f"directory.scim.{key}: unknown key (expected one of "
                              f"{', '.join(_SCIM_KEYS)})")
    token_env = _checked("directory.scim", "token_env", _optional_string,
                         scim.get("token_env"))
    groups = {k: _checked("directory.scim", k, _optional_string, scim.get(k))
              for k in ("admin_group", "integration_group")}
    token = None
    if token_env is not None:
        token = env.get(token_env)
        if not token:
            raise ConfigError(f"directory.scim.token_env: environment variable {token_env} "
                              "is not set")
        if len(token) < MIN_TOKEN_LENGTH:
            raise ConfigError(f"directory.scim.token_env: a token needs at least "
                              f"{MIN_TOKEN_LENGTH} characters")
        # The SCIM token opens /scim/v2/ and nothing else: it may be no other token.
        if hashlib.sha256(token.encode()).hexdigest() in user_digests \
                or token == metrics_token:
            raise ConfigError("directory.scim.token_env: the SCIM token is also a user's "
                              "or the metrics token")
    elif any(groups.values()):
        raise ConfigError("directory.scim.token_env: required with directory.scim's groups")
    return DirectoryConfig(jit=jit, scim_token_env=token_env, scim_token=token,
                           scim_admin_group=groups["admin_group"],
                           scim_integration_group=groups["integration_group"])


def parse_config(raw: Any, *, base_dir: Path | None = None,
                 env: dict[str, str] | None = None) -> Config:
    """Check a parsed YAML document; catalog entries are checked later by the catalog rules."""
    env = dict(os.environ) if env is None else env
    data = _mapping(raw, "configuration")
    known = {*_SECTIONS, "directory", "users", "policies", "items", "use_cases"}
    for key in data:
        if key not in known:
            raise ConfigError(f"{key}: unknown key (expected one of {', '.join(sorted(known))})")
    sections = {name: _section(data.get(name), name) for name in _SECTIONS}
    if sections["ui"].trusted_header and not sections["ui"].trusted_proxies:
        raise ConfigError("ui.trusted_proxies: required with ui.trusted_header (the addresses "
                          "of the SSO proxies whose header is believed)")
    sections["store"] = _store(sections["store"], _mapping(data.get("store"), "store"),
                               base_dir, env)
    raw_users = data.get("users") or []
    if not isinstance(raw_users, list):
        raise ConfigError("users: expected a list")
    users = tuple(_user(u, f"users[{i}]", env) for i, u in enumerate(raw_users))
    seen: set[str] = set()
    for i, user in enumerate(users):
        if user.email.lower() in seen:
            raise ConfigError(f"users[{i}].email: {user.email} is declared twice")
        seen.add(user.email.lower())
    digests = [u.token_sha256 for u in users]
    if len(set(digests)) != len(digests):
        raise ConfigError("users: two users share one token")
    sections["metrics"] = _metrics(sections["metrics"], env, set(digests))
    sections["ui"] = _oidc_secret(sections["ui"], env)
    catalog: dict[str, tuple[dict[str, Any], ...]] = {}
    for name in ("policies", "items", "use_cases"):
        entries = data.get(name) or []
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise ConfigError(f"{name}: expected a list of mappings")
        catalog[name] = tuple(entries)
    directory = _directory(data.get("directory"), env, set(digests),
                           sections["metrics"].token)
    return Config(users=users, directory=directory, **sections, **catalog)


def _store(store: StoreConfig, raw: dict[str, Any], base_dir: Path | None,
           env: dict[str, str]) -> StoreConfig:
    if "url" in raw and "path" in raw:
        raise ConfigError("store.url: give store.path (SQLite) or store.url (PostgreSQL), "
                          "not both")
    if store.url is None:
        for key in ("password_env", "pool_size"):
            if key in raw:
                raise ConfigError(f"store.{key}: only with store.url (PostgreSQL)")
        path = store.path or "./gateway.db"
        if base_dir is not None and not Path(path).is_absolute():
            path = str(base_dir / path)
        return dataclasses.replace(store, path=path)
    if "synchronous" in raw:
        raise ConfigError("store.synchronous: only with store.path (SQLite); PostgreSQL "
                          "commits durably (its own synchronous_commit)")
    password = None
    if store.password_env is not None:
        password = env.get(store.password_env)
        if not password:
            raise ConfigError(f"store.password_env: environment variable "
                              f"{store.password_env} is not set")
    return dataclasses.replace(store, path=None, password=password)


def _metrics(metrics: MetricsConfig, env: dict[str, str],
             user_digests: set[str]) -> MetricsConfig:
    if metrics.token_env is None:
        return metrics
    token = env.get(metrics.token_env)
    if not token:
        raise ConfigError(f"metrics.token_env: environment variable {metrics.token_env} "
                          "is not set")
    if len(token) < MIN_TOKEN_LENGTH:
        raise ConfigError(f"metrics.token_env: a token needs at least {MIN_TOKEN_LENGTH} "
                          "characters")
    if hashlib.sha256(token.encode()).hexdigest() in user_digests:
        raise ConfigError("metrics.token_env: the metrics token is also a user's token")
    return dataclasses.replace(metrics, token=token)


def _oidc_secret(ui: UIConfig, env: dict[str, str]) -> UIConfig:
    oidc = ui.oidc
    if oidc is None or oidc.client_secret_env is None:
        return ui
    secret = env.get(oidc.client_secret_env)
    if not secret:
        raise ConfigError(f"ui.oidc.client_secret_env: environment variable "
                          f"{oidc.client_secret_env} is not set")
    return dataclasses.replace(ui, oidc=dataclasses.replace(oidc, client_secret=secret))


def load_config(path: str | Path) -> Config:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the configuration ({exc.strerror})") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{where}") from None
    return parse_config(raw, base_dir=path.resolve().parent)
