"""A lower floor never imports a higher one: every module's imports, read with `ast`.

The floors, lowest first, as the code stands (each imports only from its own floor or below):

0. foundations: the package itself (`__version__`), errors, patterns, timeutil, validation,
   resources, config, signing, destinations: pure helpers every stage uses.
1. store: the database and its operations, on both backends; what it records (the Outcome of
   an attempt, a parsed request listing) is defined here, so that it imports no stage. The
   directory's records (directory.people: Person, Team, plain dataclasses) sit on this floor
   too, for the same reason, though they live in the directory's folder.
2. rules: catalog (policies, items, use cases), requests (states, transitions, permissions,
   the listing language, the scheduler) and directory (people and teams): what may happen.
   requests reads the catalog and the catalog's changes check requests, so they share a floor.
3. delivery and hooks: rendering the payloads (hooks, pure) and sending them (delivery: the
   outbox that listens to transitions, the dispatcher, the senders).
4. services the faces share: auth (who is calling) and metrics (which observes transitions
   and deliveries).
5. faces: api and ui (the web inbox reuses the API's helpers).
6. the program's parts: app (wires everything) and client (the command-line client, which
   imports nothing of the server).
7. entry points: cli, __main__ and demo (the `gateway demo` command).

Every import counts: at module level, inside a function (deferred for start-up time) and
under TYPE_CHECKING (a type is a dependency too). A new package or top-level module must be
given its floor here; a module may be given one apart from its package's (`directory.people`).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "gateway"
FLOORS: dict[str, int] = {
    **dict.fromkeys(("gateway", "errors", "patterns", "timeutil", "validation", "resources",
                     "config", "signing", "destinations"), 0),
    **dict.fromkeys(("store", "directory.people"), 1),
    **dict.fromkeys(("catalog", "requests", "directory"), 2),
    **dict.fromkeys(("delivery", "hooks"), 3),
    **dict.fromkeys(("auth", "metrics"), 4),
    **dict.fromkeys(("api", "ui"), 5),
    **dict.fromkeys(("app", "client"), 6),
    **dict.fromkeys(("cli", "__main__", "demo"), 7),
}


def part_of(module: str) -> str:
    """The key of FLOORS a module belongs to: `gateway.store.deliveries` -> `store`,
    `gateway.directory.people.x` -> `directory.people`, `gateway.cli` -> `cli`, `gateway` ->
    `gateway`. The longest dotted name that has a floor wins."""
    parts = module.split(".")
    for end in range(len(parts), 1, -1):
        if ".".join(parts[1:end]) in FLOORS:
            return ".".join(parts[1:end])
    return parts[1] if len(parts) > 1 else parts[0]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(module: str, source: str, is_package: bool = False) -> list[tuple[int, str]]:
    """(line, module) for each gateway module that `source` imports. `from gateway.x import
    y` counts as importing gateway.x.y when that is a module, else gateway.x: either way the
    floor is x's."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the module's own package upwards
                base = module.split(".")
                base = base[:len(base) - node.level + (1 if is_package else 0)]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            found.append((node.lineno, target))
    return [(line, name) for line, name in found
            if name == "gateway" or name.startswith("gateway.")]


def violations(module: str, source: str, is_package: bool = False) -> list[str]:
    here = FLOORS[part_of(module)]
    return [f"{module} (floor {here}) imports {target} (floor {FLOORS[part_of(target)]}) "
            f"on line {line}"
            for line, target in imported(module, source, is_package)
            if part_of(target) in FLOORS and FLOORS[part_of(target)] > here]


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_every_part_of_the_package_has_a_floor() -> None:
    parts = {part_of(module_name(path)) for path in _modules()}
    unplaced = sorted(parts - set(FLOORS))
    assert not unplaced, f"give these a floor in tests/test_layering.py: {unplaced}"


def test_no_module_imports_a_higher_floor() -> None:
    found = []
    for path in _modules():
        module = module_name(path)
        if part_of(module) in FLOORS:
            found += violations(module, path.read_text("utf-8"), path.name == "__init__.py")
    assert not found, "\n".join(found)


def test_imports_are_found_wherever_they_are() -> None:
    """The checker itself: a module-level, a deferred, a TYPE_CHECKING and a relative import
    reaching up are each reported; imports from below or beside are not."""
    source = (
        "from typing import TYPE_CHECKING\n"
        "import gateway.errors\n"
        "from gateway.store import codec\n"
        "from gateway import __version__\n"
        "from gateway.api.http import answer\n"
        "if TYPE_CHECKING:\n"
        "    from gateway.delivery.dispatcher import Dispatcher\n"
        "def later():\n"
        "    import gateway.cli\n"
        "    from ..requests import query\n"
    )
    found = violations("gateway.store.example", source)
    assert [v.rsplit(" ", 1)[-1] for v in found] == ["5", "7", "9", "10"], found
    assert "gateway.requests.query" not in " ".join(found)  # resolved to its package
    assert "imports gateway.requests (floor 2)" in found[-1]
    assert violations("gateway.cli", source) == []
    # A module with a floor of its own: the store may use it, it may not use its package.
    assert violations("gateway.store.example", "from gateway.directory.people import P\n") == []
    assert violations("gateway.directory.people", "from gateway.directory import service\n")


@pytest.mark.parametrize(("module", "target"), [
    ("gateway.store.deliveries", "gateway.delivery.outcome"),
    ("gateway.catalog.rules", "gateway.delivery.destinations"),
    ("gateway.client.completion", "gateway.cli"),
    ("gateway.store.listing", "gateway.requests.query"),
])
def test_the_mended_imports_would_be_caught(module: str, target: str) -> None:
    assert violations(module, f"import {target}\n")
