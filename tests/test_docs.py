"""The reference pages stay true to the code.

- docs/configuration.md documents every configuration key, with its default. The keys are not
  listed here: they are read from the configuration parser itself, which refuses an unknown
  key by naming the keys it expects (`server.zz: unknown key (expected one of host, ...)`).
  Asking it section by section, and again inside every key that takes a mapping, finds every
  key, including sections added later, so a new key cannot go undocumented.
- docs/api.md is what docs/api_reference.py makes of schemas/openapi.yaml (`make docs`).
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway import config as config_module
from gateway.config import parse_config
from gateway.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
CONFIGURATION = ROOT / "docs" / "configuration.md"
PROBE = "zz-not-a-key"
_ROW = re.compile(r"^\|\s*`([^`]+)`\s*\|\s*(.*?)\s*\|", re.MULTILINE)


def _expected(document: Any, where: str) -> list[str] | None:
    """The keys the parser expects at `where`, or None when `where` takes no mapping."""
    try:
        parse_config(document, env={})
    except ConfigError as exc:
        message = str(exc)
    else:
        return None
    # The document holds nothing but the probe, so a refusal that names it is about it.
    named = re.search(rf"{re.escape(PROBE)}\b.*expected one of ([^()]*)\)?$", message)
    if not message.startswith(where) or named is None:
        return None
    return [key.strip() for key in named.group(1).split(",")]


def _nested(path: list[str], leaf: Any) -> Any:
    for name in reversed(path):
        leaf = {name: leaf}
    return leaf


def _walk(path: list[str], names: list[str]) -> Iterator[str]:
    for name in names:
        inner = _expected(_nested([*path, name], {PROBE: 1}), ".".join([*path, name]))
        if inner is None:
            yield ".".join([*path, name])
        else:
            yield from _walk([*path, name], inner)


def configuration_keys() -> list[str]:
    """Every key of the configuration file, as `section.key` (`users[].key` in the list)."""
    keys: list[str] = []
    top = _expected({PROBE: 1}, "")
    assert top, "the parser no longer names the keys it expects: update this test's probe"
    for name in top:
        if name == "users":
            users = _expected({"users": [{PROBE: 1}]}, "users[0]") or []
            keys += [f"users[].{key}" for key in users]
        else:
            keys += list(_walk([], [name]))
    return keys


def documented() -> dict[str, str]:
    """The first two cells of docs/configuration.md's table rows: key -> default."""
    return dict(_ROW.findall(CONFIGURATION.read_text(encoding="utf-8")))


def test_the_probe_finds_the_keys_we_know() -> None:
    keys = configuration_keys()
    for known in ("server.port", "store.url", "mail.from", "ui.trusted_proxies",
                  "metrics.token_env", "users[].token_sha256", "policies"):
        assert known in keys
    assert not any(PROBE in key for key in keys)


def test_every_configuration_key_is_documented() -> None:
    rows = documented()
    # A mapping whose parser cannot be asked for its keys is documented by its own row or by
    # rows for its keys (`ui.oidc.issuer`).
    missing = [key for key in configuration_keys()
               if key not in rows and not any(row.startswith(f"{key}.") for row in rows)]
    assert not missing, (
        "docs/configuration.md has no row for: " + ", ".join(missing)
        + " (add `| `key` | `default` | what it does |` to its section's table)")


def test_every_documented_key_exists() -> None:
    keys = configuration_keys()
    # A mapping's own row (`ui.oidc`, with its default) stands beside the rows for its keys.
    stale = [row for row in documented()
             if row not in keys and not any(row.startswith(f"{key}.") for key in keys)
             and not any(key.startswith(f"{row}.") for key in keys)]
    assert not stale, "docs/configuration.md documents keys the parser refuses: " + \
        ", ".join(stale)


def _section_defaults() -> Iterator[tuple[str, Any, Any]]:
    """(key, the default the code uses, the key's check) for every `section.key`."""
    for section, (cls, spec) in config_module._SECTIONS.items():
        defaults = cls()
        for key, (attr, check) in spec.items():
            yield f"{section}.{key}", getattr(defaults, attr), check


@pytest.mark.parametrize(("key", "default", "check"), list(_section_defaults()),
                         ids=[key for key, _, _ in _section_defaults()])
def test_documented_default_is_the_code_default(key: str, default: Any, check: Any) -> None:
    cell = documented().get(key)
    assert cell is not None, f"docs/configuration.md has no row for {key}"
    shown = re.fullmatch(r"`([^`]*)`", cell)
    assert shown, f"{key}: the default should be one `value`, not {cell!r}"
    text = shown.group(1)
    if default is None:
        assert text == "null", f"{key}: the default is null, the page says {text}"
    elif isinstance(default, str):
        assert text == default, f"{key}: the default is {default}, the page says {text}"
    else:
        assert check(yaml.safe_load(text)) == default, \
            f"{key}: the default is {default!r}, the page says {text}"


def test_the_example_configuration_uses_documented_keys_only() -> None:
    raw = yaml.safe_load((ROOT / "config.example.yaml").read_text(encoding="utf-8"))
    keys = set(documented())
    def leaves(prefix: str, values: dict[str, Any]) -> Iterator[str]:
        for key, value in values.items():
            if isinstance(value, dict) and f"{prefix}.{key}" not in keys:
                yield from leaves(f"{prefix}.{key}", value)  # `directory.scim.token_env`
            else:
                yield f"{prefix}.{key}"

    for section, values in raw.items():
        if isinstance(values, dict):
            assert all(key in keys for key in leaves(section, values)), section
        elif section == "users":
            assert all(f"users[].{key}" in keys for user in values for key in user)
        else:
            assert section in keys


def test_api_reference_is_current() -> None:
    made = subprocess.run([sys.executable, str(ROOT / "docs" / "api_reference.py")],
                          capture_output=True, text=True, check=True, timeout=60).stdout
    assert made == (ROOT / "docs" / "api.md").read_text(encoding="utf-8"), \
        "docs/api.md is not what schemas/openapi.yaml says: run `make docs`"
