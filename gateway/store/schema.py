"""The database schema and its migrations, run at start-up before the first request.

`PRAGMA user_version` holds the number of migrations applied. Tables and indexes are made
with sqlite-utils; each step is idempotent (`if_not_exists`), so a migration interrupted by a
crash is simply run again at the next start.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

import sqlite_utils

from gateway.errors import ConfigError

Migration = Callable[[sqlite_utils.Database], None]


def _catalog_and_requests(db: sqlite_utils.Database) -> None:
    db["policies"].create(
        {"code": str, "name": str, "description": str, "item_types": str, "reason_format": str,
         "extra_field": str, "approver_roles": str, "email_notifications": int, "hook": str,
         "created_at": str, "updated_at": str},
        pk="code", not_null={"name", "item_types", "reason_format", "approver_roles", "hook"},
        if_not_exists=True,
    )
    db["policies"].create_index(["name"], unique=True, if_not_exists=True)
    db["items"].create(
        {"key": str, "name": str, "technical_name": str, "url": str, "summary": str,
         "type": str, "responsibilities": str, "properties": str, "policy_code": str,
         "created_at": str, "updated_at": str},
        pk="key", not_null={"name", "type"},
        foreign_keys=[("policy_code", "policies", "code")], if_not_exists=True,
    )
    db["items"].create_index(["policy_code"], if_not_exists=True)
    db["use_cases"].create(
        {"key": str, "name": str, "summary": str, "responsibilities": str, "properties": str,
         "created_at": str, "updated_at": str},
        pk="key", not_null={"name"}, if_not_exists=True,
    )
    db["requests"].create(
        {"id": int, "requested_by": str, "target_type": str, "target_id": str, "action": str,
         "resource": str, "policy_code": str, "state": str, "reason": str, "use_case": str,
         "extra_information": str, "audience": str, "recipients": str, "created_at": str,
         "processed_at": str, "processed_by": str, "remarks": str, "expires_at": str,
         "access_expires_at": str, "shareable": int, "scope": str, "cascades": int,
         "requested_duration": str, "requested_expiration": str, "updated_at": str},
        pk="id",
        not_null={"requested_by", "target_type", "target_id", "action", "resource", "state",
                  "created_at", "expires_at"},
        if_not_exists=True,
    )
    requests = db["requests"]
    for columns in (
        ["state", "created_at", "id"], ["requested_by", "created_at", "id"],
        ["created_at", "id"], ["processed_at", "id"], ["expires_at", "id"],
        ["action", "id"], ["resource", "id"], ["target_id", "id"],
        ["state", "expires_at"], ["state", "access_expires_at"],
    ):
        requests.create_index(columns, if_not_exists=True)
    # The database itself refuses a second PENDING request for one (action, resource, target).
    db.execute(
        "CREATE UNIQUE INDEX IF NOT EXISTS requests_one_pending "
        "ON requests (action, resource, target_type, target_id) WHERE state = 'PENDING'"
    )
    db["request_recipients"].create(
        {"request_id": int, "email": str}, pk=("request_id", "email"),
        foreign_keys=[("request_id", "requests", "id")], if_not_exists=True,
    )
    db["request_recipients"].create_index(["email", "request_id"], if_not_exists=True)
    db["activity"].create(
        {"id": int, "request_id": int, "at": str, "actor": str, "from_state": str,
         "to_state": str, "comment": str, "changes": str},
        pk="id", foreign_keys=[("request_id", "requests", "id")],
        not_null={"request_id", "at", "actor", "to_state"}, if_not_exists=True,
    )
    db["activity"].create_index(["request_id", "id"], if_not_exists=True)
    db["audit_events"].create(
        {"id": int, "at": str, "actor": str, "type": str, "subject": str, "before": str,
         "after": str},
        pk="id", not_null={"at", "actor", "type", "subject"}, if_not_exists=True,
    )
    for columns in (["at", "id"], ["type", "id"], ["subject", "id"]):
        db["audit_events"].create_index(columns, if_not_exists=True)
    # Append-only: the database refuses to change or remove an audit event.
    for action in ("UPDATE", "DELETE"):
        db.execute(
            f"CREATE TRIGGER IF NOT EXISTS audit_events_no_{action.lower()} "
            f"BEFORE {action} ON audit_events "
            "BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END"
        )


def _deliveries(db: sqlite_utils.Database) -> None:
    """The outbox (SPEC §6): one row per channel a transition triggers, written with it."""
    db["deliveries"].create(
        {"seq": int, "id": str, "request_id": int, "event": str, "channel": str,
         "destination": str, "policy_code": str, "state": str, "created_at": str,
         "attempted_at": str, "finished_at": str, "duration_ms": int, "http_status": int,
         "smtp_code": int, "error_kind": str, "error_message": str, "response_snippet": str,
         "payload": str, "payload_sha256": str, "meta": str, "request_headers": str,
         "redelivery_of": str},
        pk="seq", not_null={"id", "request_id", "event", "channel", "destination", "state",
                            "created_at"},
        foreign_keys=[("request_id", "requests", "id")], if_not_exists=True,
    )
    deliveries = db["deliveries"]
    deliveries.create_index(["id"], unique=True, if_not_exists=True)
    for columns in (["state", "seq"], ["request_id", "seq"], ["created_at", "seq"],
                    ["channel", "seq"], ["event", "seq"]):
        deliveries.create_index(columns, if_not_exists=True)


def _mail_threads_and_notices(db: sqlite_utils.Database) -> None:
    """Per request: the Message-ID that roots its mail thread, and when the "access ends in
    one hour" notice was recorded (so that it is sent once, even across restarts)."""
    columns = db["requests"].columns_dict
    for name in ("mail_thread", "expiry_notice_at"):
        if name not in columns:
            db["requests"].add_column(name, str)


def _queued_by_channel(db: sqlite_utils.Database) -> None:
    """The dispatcher fetches the queued records of each channel separately, in order."""
    db["deliveries"].create_index(["state", "channel", "seq"], if_not_exists=True)


def _claims_and_instances(db: sqlite_utils.Database) -> None:
    """Who claimed a record (an instance id), and the instances with their leases (SPEC §10;
    one instance on SQLite, but the same dispatcher)."""
    if "claimed_by" not in db["deliveries"].columns_dict:
        db["deliveries"].add_column("claimed_by", str)
    db["instances"].create(
        {"id": str, "host": str, "pid": int, "version": str, "started_at": str,
         "heartbeat_at": str},
        pk="id", not_null={"started_at", "heartbeat_at"}, if_not_exists=True,
    )


def _ui_sessions(db: sqlite_utils.Database) -> None:
    """The web inbox's sign-ins (SPEC §12), in the store so that any instance knows them:
    only the SHA-256 of a session id is kept, never the id itself."""
    db["ui_sessions"].create(
        {"id_sha256": str, "email": str, "token_sha256": str, "created_at": str,
         "expires_at": str},
        pk="id_sha256", not_null={"email", "token_sha256", "created_at", "expires_at"},
        if_not_exists=True,
    )
    db["ui_sessions"].create_index(["expires_at"], if_not_exists=True)


def _delivery_phases(db: sqlite_utils.Database) -> None:
    """How far each attempt got, the milliseconds per phase and the address used (SPEC §6)."""
    columns = db["deliveries"].columns_dict
    for name, kind in (("phase", str), ("phase_ms", str), ("remote_address", str)):
        if name not in columns:
            db["deliveries"].add_column(name, kind)


def _directory(db: sqlite_utils.Database) -> None:
    """People, teams and memberships (SPEC §14), and the directory's version, bumped by every
    change (store.directory.directory_changed) so that cached people stay exact."""
    db["people"].create(
        {"email": str, "display_name": str, "active": int, "admin": int, "integration": int,
         "roles": str, "manager": str, "source": str, "scim_id": str, "external_id": str,
         "created_at": str, "updated_at": str},
        pk="email", not_null={"active", "admin", "integration", "roles", "source",
                              "created_at", "updated_at"},
        if_not_exists=True,
    )
    people = db["people"]
    people.create_index(["scim_id"], unique=True, if_not_exists=True)
    for columns in (["external_id"], ["manager"], ["source", "email"], ["active", "email"]):
        people.create_index(columns, if_not_exists=True)
    db["teams"].create(
        {"name": str, "scim_id": str, "external_id": str, "created_at": str,
         "updated_at": str},
        pk="name", not_null={"created_at", "updated_at"}, if_not_exists=True,
    )
    db["teams"].create_index(["scim_id"], unique=True, if_not_exists=True)
    db["teams"].create_index(["external_id"], if_not_exists=True)
    db["team_members"].create({"team": str, "email": str}, pk=("team", "email"),
                              if_not_exists=True)
    db["team_members"].create_index(["email", "team"], if_not_exists=True)
    db.execute("CREATE TABLE IF NOT EXISTS gateway_directory_version "
               "(version INTEGER NOT NULL)")
    if db.execute("SELECT count(*) FROM gateway_directory_version").fetchone()[0] == 0:
        db.execute("INSERT INTO gateway_directory_version (version) VALUES (0)")


def _api_tokens(db: sqlite_utils.Database) -> None:
    """Personal access tokens (SPEC §14): the SHA-256 of each token, never the token; a
    unique index finds a presented token by its digest. Revoked rows stay (revoked_at)."""
    db["api_tokens"].create(
        {"seq": int, "id": str, "email": str, "name": str, "digest": str, "created_at": str,
         "expires_at": str, "last_used_at": str, "revoked_at": str},
        pk="seq", not_null={"id", "email", "name", "digest", "created_at", "expires_at"},
        if_not_exists=True,
    )
    tokens = db["api_tokens"]
    tokens.create_index(["digest"], unique=True, if_not_exists=True)
    tokens.create_index(["id"], unique=True, if_not_exists=True)
    tokens.create_index(["email", "seq"], if_not_exists=True)


def _admins_index(db: sqlite_utils.Database) -> None:
    """The active admins (approver code `admins`) found without walking every active person:
    with 50,000 people, that walk took ~10 ms of each request's transaction."""
    db["people"].create_index(["admin", "active", "email"], if_not_exists=True)


MIGRATIONS: list[Migration] = [_catalog_and_requests, _deliveries, _mail_threads_and_notices,
                               _queued_by_channel, _claims_and_instances, _ui_sessions,
                               _delivery_phases, _directory, _api_tokens, _admins_index]


def newer_schema(key: str, version: int, known: int) -> ConfigError:
    return ConfigError(f"{key}: the database has schema version {version}, newer than this "
                       f"gateway knows ({known}): upgrade the gateway")


def migrate(conn: sqlite3.Connection) -> int:
    """Apply the migrations this database has not had yet; return the schema version."""
    db = sqlite_utils.Database(conn)
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > len(MIGRATIONS):
        raise newer_schema("store.path", version, len(MIGRATIONS))
    for number, migration in enumerate(MIGRATIONS[version:], start=version + 1):
        migration(db)
        conn.execute(f"PRAGMA user_version = {number}")
    return len(MIGRATIONS)
