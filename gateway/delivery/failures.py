"""One WARNING line per failed delivery, for the operator watching `gateway serve`.

The line names the delivery (its id: `gateway delivery get ID` shows the rest), the channel,
where it went and the error kind. It never carries the body, the secret or a token: a
destination URL keeps only its scheme, host and port, as tokens hide in userinfo, queries,
fragments and paths alike (chat webhooks carry theirs in the path).
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit, urlunsplit

log = logging.getLogger("gateway.delivery")


def shown_destination(destination: str) -> str:
    """`https://hooks.example.com/…` of `https://user:pw@hooks.example.com/access?t=x`;
    an e-mail address as it is."""
    if "://" not in destination:
        return destination
    try:
        parts = urlsplit(destination)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "(an unreadable URL)"
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port is None else f"{host}:{port}"
    return urlunsplit((parts.scheme, netloc, "/…" if parts.path.strip("/") else "/", "", ""))


def log_failed(delivery_id: str, channel: str, destination: str, kind: str | None,
               code: int | None = None) -> None:
    """The line for one failed delivery; `code` is the HTTP status or SMTP code, if any."""
    answered = f" ({code})" if code is not None else ""
    log.warning("delivery %s failed: %s to %s: %s%s", delivery_id, channel,
                shown_destination(destination), kind or "unknown", answered)
