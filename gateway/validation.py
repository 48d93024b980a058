"""Checks for JSON bodies: every refusal is an InvalidField naming the field's path.

Text is refused when it could not be stored or rendered faithfully: lone surrogates (from
JSON `\\ud800` escapes), NUL, and in single-line fields any control character, so that no
free text can ever become a header line or break a key.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from gateway.errors import InvalidField

EMAIL = re.compile(r"[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+")
_SURROGATE = re.compile("[\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_MULTILINE_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

SHORT = 256
LONG = 10_000
MAX_LIST = 200


def check_text(field: str, value: Any, *, max_len: int, single_line: bool) -> str:
    if not isinstance(value, str):
        raise InvalidField(field, "expected a string")
    if len(value) > max_len:
        raise InvalidField(field, f"at most {max_len} characters", maxLength=max_len)
    if _SURROGATE.search(value):
        raise InvalidField(field, "contains a lone surrogate (not valid Unicode text)")
    pattern = _CONTROL if single_line else _MULTILINE_CONTROL
    if pattern.search(value):
        raise InvalidField(field, "contains a control character")
    return value


class Fields:
    """A JSON object being read field by field; `path` prefixes every field name."""

    def __init__(self, value: Any, path: str = "") -> None:
        if not isinstance(value, dict):
            raise InvalidField(path or "body", "expected a JSON object")
        self.data: dict[str, Any] = value
        self.path = path

    def name(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def only(self, allowed: Iterable[str]) -> Fields:
        allowed = set(allowed)
        for key in self.data:
            if key not in allowed:
                raise InvalidField(self.name(key), "unknown field", allowed=sorted(allowed))
        return self

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def raw(self, key: str) -> Any:
        return self.data.get(key)

    def text(
        self,
        key: str,
        *,
        required: bool = False,
        default: str | None = None,
        max_len: int = SHORT,
        single_line: bool = True,
        pattern: re.Pattern[str] | None = None,
        hint: str = "",
    ) -> str | None:
        value = self.data.get(key)
        if value is None:
            if required:
                raise InvalidField(self.name(key), "required")
            return default
        value = check_text(self.name(key), value, max_len=max_len, single_line=single_line)
        if required and not value.strip():
            raise InvalidField(self.name(key), "must not be empty")
        if pattern is not None and not pattern.fullmatch(value):
            raise InvalidField(self.name(key), hint or f"must match {pattern.pattern}")
        return value

    def email(self, key: str, *, required: bool = False) -> str | None:
        return self.text(key, required=required, max_len=254, pattern=EMAIL,
                         hint="expected an e-mail address")

    def boolean(self, key: str, *, default: bool = False) -> bool:
        value = self.data.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise InvalidField(self.name(key), "expected true or false")
        return value

    def choice(self, key: str, options: Iterable[str], *, default: str | None = None) -> str:
        options = tuple(options)
        value = self.data.get(key)
        if value is None:
            if default is None:
                raise InvalidField(self.name(key), "required", allowed=list(options))
            return default
        if value not in options:
            raise InvalidField(self.name(key), "expected one of " + ", ".join(options),
                               allowed=list(options))
        return value

    def items(self, key: str, *, max_items: int = MAX_LIST) -> list[Any]:
        value = self.data.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise InvalidField(self.name(key), "expected a list")
        if len(value) > max_items:
            raise InvalidField(self.name(key), f"at most {max_items} entries", maxItems=max_items)
        return value

    def texts(self, key: str, *, max_items: int = MAX_LIST, max_len: int = SHORT,
              unique: bool = True) -> list[str]:
        values = [
            check_text(f"{self.name(key)}[{i}]", v, max_len=max_len, single_line=True)
            for i, v in enumerate(self.items(key, max_items=max_items))
        ]
        if unique and len(set(values)) != len(values):
            raise InvalidField(self.name(key), "contains duplicates")
        return values

    def objects(self, key: str, *, max_items: int = MAX_LIST) -> list[Fields]:
        return [
            Fields(v, f"{self.name(key)}[{i}]")
            for i, v in enumerate(self.items(key, max_items=max_items))
        ]

    def object(self, key: str) -> Fields | None:
        value = self.data.get(key)
        return None if value is None else Fields(value, self.name(key))
