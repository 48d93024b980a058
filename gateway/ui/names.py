"""The names people know things by: items and use cases by name, properties by label.

Requests store keys (`resource`, `useCase`) and property codes (`extraInformation.code`), as
the API answers them; a page looks up the catalog records its requests name, in one read,
and shows the name with the key as secondary text. A key whose record is gone is shown as
itself: a deleted use case must not hide what a request was for.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from gateway.store import catalog as catalog_store
from gateway.store import ui as ui_store
from gateway.store.database import Database

__all__ = ["Names", "names_for"]


@dataclass(frozen=True)
class Names:
    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    use_cases: dict[str, dict[str, Any]] = field(default_factory=dict)
    policies: dict[str, dict[str, Any]] = field(default_factory=dict)

    def item(self, key: str | None) -> str:
        """The item's name; its key when it has none (or is gone)."""
        return _name(self.items, key)

    def use_case(self, key: str | None) -> str:
        return _name(self.use_cases, key)

    def policy(self, code: str | None) -> str:
        return _name(self.policies, code)

    def label(self, use_case_key: str | None, code: str | None) -> str:
        """A property's label, from the use case that holds it; its code when none says."""
        record = self.use_cases.get(use_case_key or "")
        for prop in (record or {}).get("properties") or []:
            if prop.get("code") == code and prop.get("label"):
                return str(prop["label"])
        return code or ""


def _name(records: dict[str, dict[str, Any]], key: str | None) -> str:
    if not key:
        return ""
    record = records.get(key)
    return str(record["name"]) if record and record.get("name") else key


def _read(conn: Any, items: set[str], use_cases: set[str], policies: set[str]) -> Names:
    return Names(
        items=ui_store.records_by_key(conn, catalog_store.ITEMS, items) if items else {},
        use_cases=ui_store.records_by_key(conn, catalog_store.USE_CASES, use_cases)
        if use_cases else {},
        policies=ui_store.records_by_key(conn, catalog_store.POLICIES, policies)
        if policies else {},
    )


async def names_for(database: Database, requests: Iterable[dict[str, Any]] = (), *,
                    items: Iterable[str] = (), policies: Iterable[str] = ()) -> Names:
    """The names of what these requests (and these item keys, policy codes) refer to."""
    item_keys = {k for k in items if k}
    policy_codes = {c for c in policies if c}
    use_case_keys: set[str] = set()
    for request in requests:
        item_keys.add(request["resource"])
        if request.get("useCase"):
            use_case_keys.add(request["useCase"])
    return await database.read(_read, item_keys, use_case_keys, policy_codes)
