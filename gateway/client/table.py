"""Aligned text for people: tables, `key: value` blocks, relative times, colour on terminals.

Hand-written rather than a table library: what is needed is a few columns padded to their
widest cell, and the libraries that do this (tabulate, rich) cost 40 ms and more of start-up,
a third of the client's budget. Colour is painted after padding, so escapes never skew
the alignment; it is on only for a terminal, and never when `NO_COLOR` is set (no-color.org).
"""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import IO

Cell = str | tuple[str, str]  # text, or (text, colour name)
COLOURS = {"bold": "1", "dim": "2", "red": "31", "green": "32", "yellow": "33", "blue": "34"}
_MINUTE, _HOUR, _DAY = 60, 3600, 86400
ABSOLUTE_AFTER_DAYS = 60  # past that, a date says more than "75d 3h ago"


class Style:
    """Whether this output gets colour: a terminal, and no `NO_COLOR` in the environment."""

    def __init__(self, stream: IO[str]) -> None:
        self.colour = stream.isatty() and not os.environ.get("NO_COLOR")

    def paint(self, text: str, colour: str | None) -> str:
        if not (self.colour and colour and text):
            return text
        return f"\033[{COLOURS[colour]}m{text}\033[0m"


def width(text: str) -> int:
    """Columns on a terminal: East Asian wide characters take two, combining marks none."""
    if text.isascii():
        return len(text)
    return sum(0 if unicodedata.combining(c) else
               2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def table(headers: Sequence[str], rows: Sequence[Sequence[Cell]], style: Style) -> str:
    """Columns padded to their widest cell, two spaces apart; the header in bold."""
    texts = [[c if isinstance(c, str) else c[0] for c in row] for row in rows]
    widths = [max([width(h)] + [width(row[i]) for row in texts]) for i, h in enumerate(headers)]
    lines = [_line([(h.upper(), "bold") for h in headers], widths, style)]
    lines += [_line(row, widths, style) for row in rows]
    return "\n".join(lines)


def _line(cells: Sequence[Cell], widths: Sequence[int], style: Style) -> str:
    out = []
    last = len(cells) - 1
    for i, cell in enumerate(cells):
        text, colour = (cell, None) if isinstance(cell, str) else cell
        pad = "" if i == last else " " * (widths[i] - width(text))
        out.append(style.paint(text, colour) + pad)
    return "  ".join(out).rstrip()


def block(pairs: Sequence[tuple[str, Cell]], style: Style) -> str:
    """`label  value` lines, the values aligned; empty values are left out."""
    shown = [(k, v) for k, v in pairs if (v if isinstance(v, str) else v[0])]
    pad = max((width(k) for k, _ in shown), default=0)
    lines = []
    for label, value in shown:
        text, colour = (value, None) if isinstance(value, str) else value
        lines.append(style.paint(label + ":", "bold") + " " * (pad - width(label) + 2)
                     + style.paint(text, colour))
    return "\n".join(lines)


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def span(seconds: float) -> str:
    """`3h 10m`, `29d 23h`, `45s`: the two largest units, which is what people read."""
    total = int(seconds)
    if total < _MINUTE:
        return f"{total}s"
    parts = [(total // _DAY, "d"), (total % _DAY // _HOUR, "h"), (total % _HOUR // _MINUTE, "m")]
    while parts[0][0] == 0:
        parts.pop(0)
    shown = parts[:2]
    return " ".join(f"{n}{unit}" for n, unit in shown if n or unit == shown[0][1])


def relative(text: str | None, now: datetime | None = None) -> str:
    """`in 3h 10m`, `5m ago`, or the date when it is far; `-` when there is no time."""
    if not text:
        return "-"
    when = parse_time(text)
    seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if abs(seconds) >= ABSOLUTE_AFTER_DAYS * _DAY:
        return when.strftime("%Y-%m-%d")
    if abs(seconds) < 1:
        return "now"
    return f"in {span(seconds)}" if seconds > 0 else f"{span(-seconds)} ago"


def moment(text: str | None) -> str:
    """An absolute UTC time to the second, with the relative one: for `get`."""
    if not text:
        return ""
    return f"{parse_time(text):%Y-%m-%d %H:%M:%S} UTC ({relative(text)})"
