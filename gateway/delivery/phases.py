"""How far one delivery attempt got (SPEC §6 `phase`), and how much of the answer is kept.

The senders fill an Outcome (gateway.store.outcome) with these.
"""

from __future__ import annotations

import time
from typing import Any

PHASES = ("dns", "connect", "tls", "sent", "answered")


class PhaseClock:
    """How far one attempt got (SPEC §6 `phase`), and the milliseconds spent in each phase
    reached: entering a phase ends the one before; the last one entered is the phase."""

    def __init__(self) -> None:
        self._started: dict[str, float] = {}
        self._ended: dict[str, float] = {}
        self._last: str | None = None
        self.remote_address: str | None = None

    def enter(self, phase: str) -> None:
        now = time.perf_counter()
        if self._last is not None and self._last not in self._ended:
            self._ended[self._last] = now
        self._started[phase] = now
        self._ended.pop(phase, None)
        self._last = phase

    def leave(self, phase: str) -> None:
        if phase in self._started and phase not in self._ended:
            self._ended[phase] = time.perf_counter()

    def peer(self, peername: Any) -> None:
        """A socket's peer name, as `host:port` (`[v6]:port`)."""
        if isinstance(peername, tuple) and len(peername) >= 2:
            host, port = peername[0], peername[1]
            self.remote_address = f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"

    def fields(self) -> dict[str, Any]:
        """The Outcome's phase, phase_ms and remote_address, as of now."""
        now = time.perf_counter()
        ms = {p: max(0, round((self._ended.get(p, now) - self._started[p]) * 1000))
              for p in PHASES if p in self._started}
        return {"phase": self._last, "phase_ms": ms, "remote_address": self.remote_address}


SNIPPET_BYTES = 1024


def snippet(raw: bytes) -> str:
    return raw[:SNIPPET_BYTES].decode("utf-8", "replace")
