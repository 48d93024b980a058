"""The API's documents as people read them: requests, their activity, deliveries.

Each function takes documents exactly as the API answered them and returns text; nothing here
calls the API, so `--json` and these views always show the same answers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from gateway.client.table import Cell, Style, block, moment, relative, table

STATE_COLOURS = {"PENDING": "yellow", "APPROVED": "green", "GRANTED": "green",
                 "REJECTED": "red", "ERROR": "red", "CANCELLED": "dim", "EXPIRED": "dim",
                 "REVOKED": "dim", "queued": "yellow", "sending": "yellow",
                 "delivered": "green", "failed": "red", "interrupted": "red"}
REQUEST_COLUMNS = ("id", "state", "action", "resource", "target", "requested by", "created",
                   "deadline")
RESULT_WIDTH = 48  # a table cell; `delivery get ID` shows the whole error
DELIVERY_COLUMNS = ("id", "request", "event", "channel", "destination", "state", "result",
                    "attempted")


def _state(value: str) -> Cell:
    return (value, STATE_COLOURS.get(value, ""))


def target(request: dict[str, Any]) -> str:
    found = request.get("target") or {}
    return f"{found.get('type', '?')}:{found.get('id', '?')}"


def deadline(request: dict[str, Any]) -> str:
    """What the next moment that matters is: the decision's deadline, or the end of access."""
    state = request["state"]
    if state == "PENDING":
        return f"expires {relative(request.get('expiresAt'))}"
    ends = request.get("accessExpiresAt")
    if state in ("APPROVED", "GRANTED", "ERROR"):
        return f"access ends {relative(ends)}" if ends else "access has no end"
    if state == "REVOKED" and ends:
        return f"access ended {relative(ends)}"
    return "-"


def requests_table(items: Sequence[dict[str, Any]], style: Style) -> str:
    rows = [[r["id"], _state(r["state"]), r["action"], r["resource"], target(r),
             r["requestedBy"], relative(r["createdAt"]), deadline(r)] for r in items]
    return table(REQUEST_COLUMNS, rows, style)


def one_line(request: dict[str, Any], style: Style) -> str:
    """After a change: `7  APPROVED  read-data on sales/orders for user:x  access ends in 4h`."""
    return "  ".join([request["id"], style.paint(*_state(request["state"])),
                      f"{request['action']} on {request['resource']} for {target(request)}",
                      deadline(request)])


def request_detail(request: dict[str, Any], style: Style) -> str:
    extra = request.get("extraInformation") or {}
    pending = request["state"] == "PENDING"
    flags = [name for name in ("shareable", "cascades") if request.get(name)]
    return block([
        ("request", request["id"]),
        ("state", _state(request["state"])),
        ("action", request["action"]),
        ("resource", request["resource"]),
        ("target", target(request)),
        ("requested by", request["requestedBy"]),
        ("policy", request.get("policyCode") or ""),
        ("reason", request.get("reason") or ""),
        ("use case", request.get("useCase") or ""),
        ("extra", ", ".join(extra.get("values") or [])),
        ("audience", request.get("audience") or ""),
        ("recipients", ", ".join(request.get("recipients") or [])),
        ("created", moment(request["createdAt"])),
        ("expires", moment(request.get("expiresAt")) if pending else ""),
        ("processed", " by ".join(filter(None, [moment(request.get("processedAt")),
                                                request.get("processedBy")]))),
        ("remarks", request.get("remarks") or ""),
        ("access ends", moment(request.get("accessExpiresAt"))),
        ("scope", request.get("scope") or ""),
        ("flags", ", ".join(flags)),
    ], style)


def _changes(changes: Any) -> str:
    if not isinstance(changes, dict):
        return ""
    parts = []
    for key, value in changes.items():
        if isinstance(value, dict) and len(value) == 2:
            before, after = value.values()
            if before != after:
                parts.append(f"{key} {before or '-'} → {after or '-'}")
        else:
            parts.append(f"{key} {value}")
    return "; ".join(parts)


def activity_table(items: Sequence[dict[str, Any]], style: Style) -> str:
    rows = []
    for entry in items:
        change = f"{entry['from']} → {entry['to']}" if entry.get("from") else entry["to"]
        note = "  ".join(filter(None, [entry.get("comment") or "",
                                       _changes(entry.get("changes"))]))
        rows.append([relative(entry["at"]), entry["actor"], change, note.replace("\n", " ")])
    return table(("when", "actor", "change", "comment"), rows, style)


def _clip(text: str, most: int) -> str:
    return text if len(text) <= most else text[:most - 1] + "…"


def _result(record: dict[str, Any], most: int = 10_000) -> str:
    error = record.get("error")
    if error:
        return _clip(f"{error.get('kind')}: {error.get('message')}", most)
    if record.get("httpStatus") is not None:
        return f"HTTP {record['httpStatus']}"
    if record.get("smtpCode") is not None:
        return f"SMTP {record['smtpCode']}"
    return ""


def _phase(record: dict[str, Any]) -> str:
    """`sent (dns 0 ms, connect 1 ms, sent 5000 ms)`: how far the attempt got (SPEC §6)."""
    if not record.get("phase"):
        return ""
    spent = ", ".join(f"{k} {v} ms" for k, v in (record.get("phaseMs") or {}).items())
    return f"{record['phase']} ({spent})" if spent else record["phase"]


def deliveries_table(items: Sequence[dict[str, Any]], style: Style) -> str:
    rows = [[d["id"], d["requestId"], d["event"], d["channel"], d["destination"],
             _state(d["state"]), _result(d, RESULT_WIDTH), relative(d.get("attemptedAt"))]
            for d in items]
    return table(DELIVERY_COLUMNS, rows, style)


def verify_hint(record: dict[str, Any], now: datetime | None = None) -> str:
    """The command that checks a webhook record's signature with the policy's secret (put in
    an environment variable of your choice), with a tolerance that covers the record's age;
    empty for a record without a signature (mail, or recorded before they were kept)."""
    headers = (record.get("request") or {}).get("headers") or {}
    stamp, signature = headers.get("X-TIMESTAMP", ""), headers.get("X-HUB-SIGNATURE-256")
    if not stamp.isdigit() or not signature:
        return ""
    age = (now or datetime.now(UTC)).timestamp() - int(stamp)
    tolerance = max(300, math.ceil((abs(age) + 60) / 60) * 60)
    return (f"gateway delivery get {record['id']} --body | gateway verify --secret-env "
            f"WEBHOOK_SECRET --timestamp {stamp} --signature {signature} "
            f"--tolerance {tolerance}")


def delivery_detail(record: dict[str, Any], style: Style) -> str:
    """One record, then what was sent: its headers and body as the receiver got them, and
    how to check its signature."""
    sent = record.get("request") or {}
    headers = "\n".join(f"{k}: {v}" for k, v in (sent.get("headers") or {}).items())
    return "\n\n".join(filter(None, [block([
        ("delivery", record["id"]),
        ("request", record["requestId"]),
        ("event", record["event"]),
        ("channel", record["channel"]),
        ("destination", record["destination"]),
        ("state", _state(record["state"])),
        ("result", _result(record)),
        ("created", moment(record.get("createdAt"))),
        ("attempted", moment(record.get("attemptedAt"))),
        ("took", f"{record['durationMs']} ms" if record.get("durationMs") is not None else ""),
        ("reached", _phase(record)),
        ("address", record.get("remoteAddress") or ""),
        ("answer", (record.get("responseSnippet") or "").replace("\n", " ")),
        ("redelivery of", record.get("redeliveryOf") or ""),
        ("verify", verify_hint(record)),
    ], style), headers, sent.get("body") or ""]))


TOKEN_COLUMNS = ("id", "name", "email", "created", "expires", "last used")


def tokens_table(items: Sequence[dict[str, Any]], style: Style) -> str:
    rows = [[t["id"], t["name"], t["email"], relative(t["createdAt"]),
             relative(t["expiresAt"]), relative(t.get("lastUsedAt"))] for t in items]
    return table(TOKEN_COLUMNS, rows, style)


def token_line(token: dict[str, Any]) -> str:
    """`3f2a...  laptop (you@acme.com)  expires in 89d 23h`, without the token itself."""
    return f"{token['id']}  {token['name']} ({token['email']})  " \
           f"expires {relative(token['expiresAt'])}"
