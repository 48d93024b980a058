"""SQL for listing access requests: filters, scope, multi-key order and keyset paging."""

from __future__ import annotations

import sqlite3
from typing import Any

from gateway.requests.query import STATES, Condition, RequestQuery
from gateway.store.requests import SELECT, WITHOUT_ACTIVE_RECIPIENT, record

# Sort expressions: a NULL processedAt sorts as '' (before any time), so keysets stay total.
_ORDER_SQL = {
    "action": "action", "state": "state", "createdAt": "created_at",
    "processedAt": "coalesce(processed_at, '')", "expiresAt": "expires_at",
}
_COLUMN = {
    "requestId": "id", "requestedBy": "requested_by", "action": "action",
    "resource": "resource", "target": "target_id", "state": "state",
    "createdAt": "created_at", "processedAt": "processed_at", "expiresAt": "expires_at",
}
_COMPARE = {"eq": "=", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}
_RECIPIENT = "EXISTS (SELECT 1 FROM request_recipients rr WHERE rr.request_id = requests.id AND "


def _condition(c: Condition) -> tuple[str, list[Any]]:
    marks = ", ".join("?" for _ in c.values)
    if c.field == "recipients" and c.op == "none":
        return WITHOUT_ACTIVE_RECIPIENT, []
    if c.field == "recipients":
        inner = f"{_RECIPIENT}rr.email IN ({marks}))"
        return (f"NOT {inner}" if c.op == "ne" else inner), list(c.values)
    column = _COLUMN[c.field]
    if c.op == "in":
        return f"{column} IN ({marks})", list(c.values)
    if c.op == "ne":
        return f"({column} IS NULL OR {column} != ?)", list(c.values)
    if c.op == "ne-range":
        return f"({column} IS NULL OR {column} < ? OR {column} >= ?)", list(c.values)
    return f"{column} {_COMPARE[c.op]} ?", list(c.values)


def _keyset(order: list[tuple[str, bool]], after: list[Any],
            id_desc: bool | None = None) -> tuple[str, list[Any]]:
    """Rows strictly after `after` in the order (the OR-expansion of a row comparison)."""
    keys = [(_ORDER_SQL[k], desc) for k, desc in order]
    keys.append(("id", order[-1][1] if id_desc is None else id_desc))
    ors, params = [], []
    for i, (expr, desc) in enumerate(keys):
        ands = [f"{e} = ?" for e, _ in keys[:i]] + [f"{expr} {'<' if desc else '>'} ?"]
        ors.append("(" + " AND ".join(ands) + ")")
        params.extend(after[: i + 1])
    return "(" + " OR ".join(ors) + ")", params


def _states(conditions: list[Condition]) -> set[str]:
    """The states a query's filters leave possible."""
    states = set(STATES)
    for c in conditions:
        if c.field == "state" and c.op in ("eq", "in"):
            states &= set(c.values)
        elif c.field == "state" and c.op == "ne":
            states -= set(c.values)
    return states


def _by_state(query: RequestQuery) -> list[tuple[str, list[Any]]]:
    """An order that starts with `state`, one part per state: `state = ?` plus what follows
    the cursor. Each part walks its index in the order of the remaining keys, where one query
    would sort (an index cannot be walked ascending by state and descending by time at once).
    Measured at 100,000 rows, 100 pages of `order=state,-createdAt` with a createdAt range:
    44 ms a page (p50) as one query, 3.8 ms in parts."""
    desc = query.order[0][1]
    rest = query.order[1:]
    id_desc = query.order[-1][1]
    parts = []
    for state in sorted(_states(query.conditions), reverse=desc):
        if query.after is None or state != query.after[0]:
            if query.after is not None and (state > query.after[0]) == desc:
                continue  # before the cursor's state: on earlier pages
            parts.append(("state = ?", [state]))
        elif rest:
            sql, values = _keyset(rest, query.after[1:], id_desc)
            parts.append((f"state = ? AND {sql}", [state, *values]))
        else:
            parts.append((f"state = ? AND id {'<' if id_desc else '>'} ?",
                          [state, query.after[1]]))
    return parts


def list_requests(conn: sqlite3.Connection, query: RequestQuery, *, email: str,
                  admin: bool) -> tuple[list[dict[str, Any]], list[Any] | None]:
    """One page, and the sort values of its last row when another page may follow.

    "own" (requested by me OR for me) runs as two ordered, limited halves merged by UNION:
    each half walks its own index in order, where one query with OR would sort every row
    of the user (147 ms for a requester with 100,000 requests).
    """
    where: list[str] = []
    params: list[Any] = []
    for c in query.conditions:
        sql, values = _condition(c)
        where.append(sql)
        params += values
    # Split by state only over all requests: a user's own requests are best found by their
    # user's index, which gives no state order (one part per state then walks them all).
    by_state = query.order[0][0] == "state" and query.scope == "all"
    split = _by_state(query) if by_state else [("1 = 1", [])]
    if query.after is not None and not by_state:
        sql, values = _keyset(query.order, query.after)
        where.append(sql)
        params += values
    if query.scope == "own":
        scopes = [("requested_by = ?", [email]),
                  ("target_type = 'user' AND target_id = ?", [email])]
    elif query.scope == "actionable":
        clause, values = "state = 'PENDING' AND requested_by != ?", [email]
        if not admin:
            clause += f" AND {_RECIPIENT}rr.email = ?)"
            values.append(email.lower())
        scopes = [(clause, values)]
    else:
        scopes = [("1 = 1", [])]
    direction = "DESC" if query.order[-1][1] else "ASC"
    order_sql = ", ".join(f"{_ORDER_SQL[k]} {'DESC' if d else 'ASC'}" for k, d in query.order)
    sort_values = ", ".join(f"{_ORDER_SQL[k]} AS sort_{i}" for i, (k, _) in enumerate(query.order))
    limit = query.limit + 1
    halves, all_params = [], []
    for clause, values in scopes:
        for part, part_values in split:
            halves.append(
                f"SELECT {SELECT}, {sort_values}, id AS sort_id FROM requests "
                f"WHERE {' AND '.join([clause, part, *where])} "
                f"ORDER BY {order_sql}, id {direction} LIMIT ?")
            all_params += [*values, *part_values, *params, limit]
    if not halves:  # the filters leave no state possible
        return [], None
    if len(halves) == 1:
        sql = halves[0]
    else:
        merged = ", ".join(f"sort_{i} {'DESC' if d else 'ASC'}"
                           for i, (_, d) in enumerate(query.order))
        sql = (" UNION ".join(f"SELECT * FROM ({h}) AS part{i}" for i, h in enumerate(halves))
               + f" ORDER BY {merged}, sort_id {direction} LIMIT ?")
        all_params.append(limit)
    rows = conn.execute(sql, all_params).fetchall()
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    width = len(query.order)
    last = None
    if more and rows:
        tail = tuple(rows[-1])
        last = list(tail[-(width + 1):])
    return [record(r) for r in rows], last
