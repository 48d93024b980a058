"""Rows to records and back: column names are snake_case, records camelCase (as the API)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

import orjson


def dump(value: Any) -> str | None:
    if value is None:
        return None
    return orjson.dumps(value).decode()


def load(text: str | None) -> Any:
    return None if text is None else orjson.loads(text)


@dataclass(frozen=True)
class Column:
    key: str  # the record's key
    name: str  # the column's name
    kind: str = "text"  # text | json | bool


def col(key: str, name: str | None = None, kind: str = "text") -> Column:
    return Column(key, name or key, kind)


def to_row(columns: tuple[Column, ...], record: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for c in columns:
        if c.key not in record:
            continue
        value = record[c.key]
        if c.kind == "json":
            value = dump(value)
        elif c.kind == "bool":
            value = int(bool(value))
        row[c.name] = value
    return row


def from_row(columns: tuple[Column, ...], row: sqlite3.Row) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for c in columns:
        value = row[c.name]
        if c.kind == "json":
            value = load(value)
        elif c.kind == "bool":
            value = bool(value)
        record[c.key] = value
    return record
