"""What a hook says about a transition: the data both renderers share (SPEC §4, §5 mapping).

Gathered inside the transition's transaction from the request, its item and its use case, so
that the payload describes the state that was committed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class HookContext:
    request: dict[str, Any]  # the request's record after the transition
    item: dict[str, Any]
    use_case: dict[str, Any] | None
    extra_field: str | None  # the policy's extraField
    event: str  # pending, approved, ... (the state entered, lower case)
    timestamp: str  # when the transition happened

    @property
    def status(self) -> str:
        return self.event.capitalize()

    @property
    def extra_information(self) -> dict[str, Any] | None:
        """The request's extra values with the label and code of the use case's property."""
        extra = self.request["extraInformation"]
        if not extra or self.extra_field is None:
            return None
        prop = next((p for p in (self.use_case or {}).get("properties", [])
                     if p["code"] == self.extra_field), None)
        return {"name": prop["label"] if prop else self.extra_field,
                "code": self.extra_field, "values": list(extra["values"])}
