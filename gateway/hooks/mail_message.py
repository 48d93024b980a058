"""The mailhook's SMTP message (SPEC §5), built by hand: one text/plain part whose body is the
XML document and nothing else.

Why by hand: an EmailMessage costs ~0.6 ms to build and flatten, this costs a few tens of
microseconds, and a single-part message is simple enough to write exactly. Header values are
never taken from free text without removing CR, LF and other controls; non-ASCII goes out as
RFC 2047 encoded words.
"""

from __future__ import annotations

import base64
import hashlib
import re
from email.header import Header
from email.utils import formatdate

_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")
MAX_LINE = 998


def header_text(value: str) -> str:
    """One line, no controls: nothing a value holds can start a new header."""
    return _CONTROL.sub(" ", value).strip()


def _encoded(value: str) -> str:
    value = header_text(value)
    if value.isascii() and len(value) <= 900:
        return value
    return Header(value, "utf-8", maxlinelen=76).encode()


def _body(text: str, eightbit: bool) -> tuple[str, bytes]:
    """(Content-Transfer-Encoding, body bytes with CRLF line ends)."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    short = all(len(line.encode("utf-8")) <= MAX_LINE for line in lines)
    if short and text.isascii():
        return "7bit", "\r\n".join(lines).encode("ascii")
    if short and eightbit:
        return "8bit", "\r\n".join(lines).encode("utf-8")
    raw = base64.encodebytes(text.encode("utf-8")).replace(b"\n", b"\r\n")
    return "base64", raw


def message_id(delivery_id: str, sender: str) -> str:
    """Every mail's Message-ID comes from its delivery id: unique, and known before sending,
    so that later mails of the same request can refer to the first one."""
    domain = sender.rpartition("@")[2] or "gateway.invalid"
    return f"<{delivery_id}@{header_text(domain)}>"


def _part(content_type: str, text: str, eightbit: bool, extra: str = "") -> bytes:
    encoding, payload = _body(text, eightbit)
    return (f"Content-Type: {content_type}; charset=utf-8{extra}\r\n"
            f"Content-Transfer-Encoding: {encoding}\r\n\r\n").encode("ascii") + payload


def _multipart(kind: str, message_id: str, body: str, parts: list[bytes]) -> tuple[bytes, str]:
    """(payload, Content-Type) of a multipart body made of `parts`."""
    boundary = "=_" + hashlib.sha256((message_id + body).encode()).hexdigest()[:32]
    chunks = [f"--{boundary}\r\n".encode() + parts[0]]
    chunks += [f"\r\n--{boundary}\r\n".encode() + part for part in parts[1:]]
    chunks.append(f"\r\n--{boundary}--\r\n".encode())
    return b"".join(chunks), f'multipart/{kind}; boundary="{boundary}"'


ATTACHMENT = "data-access-request.xml"
# What each mail profile (SPEC §5) changes in the mailhook's headers: Jira Service Management
# drops mail marked automatic unless its sender is allow-listed.
_PROFILE_HEADERS = {
    "standard": {"Auto-Submitted": "auto-generated"},
    "jira": {"X-Auto-Response-Suppress": "All"},
    "servicenow": {"Auto-Submitted": "auto-generated"},
}


def build_message(*, sender: str, to: str, subject: str, body: str, message_id: str,
                  request_key: str, status: str, eightbit: bool,
                  extra_headers: dict[str, str] | None = None,
                  html: str | None = None, profile: str = "standard",
                  lines: str | None = None) -> tuple[bytes, dict[str, str]]:
    """The message's bytes, and its headers as sent (for the delivery record).

    With `html`, a multipart/alternative message: the plain text first, then the HTML.
    With the `servicenow` profile, `lines` (name:value) is the text/plain body and `body`
    (the XML document) its attachment, in a multipart/mixed message.
    """
    if profile == "servicenow" and lines is not None:
        attachment = _part("application/xml", body, eightbit, f'; name="{ATTACHMENT}"')
        attachment = (f'Content-Disposition: attachment; filename="{ATTACHMENT}"\r\n'
                      .encode("ascii") + attachment)
        payload, kind = _multipart("mixed", message_id, body,
                                   [_part("text/plain", lines, eightbit), attachment])
        content = {"Content-Type": kind}
    elif html is None:
        encoding, payload = _body(body, eightbit)
        content = {"Content-Type": "text/plain; charset=utf-8",
                   "Content-Transfer-Encoding": encoding}
    else:
        payload, kind = _multipart("alternative", message_id, body, [
            _part("text/plain", body, eightbit), _part("text/html", html, eightbit)])
        content = {"Content-Type": kind}
    headers = {
        "From": header_text(sender),
        "To": header_text(to),
        "Subject": _encoded(subject),
        "Date": formatdate(usegmt=True),
        "Message-ID": header_text(message_id),
        **_PROFILE_HEADERS.get(profile, _PROFILE_HEADERS["standard"]),
        "X-Access-Request-Key": header_text(request_key),
        "X-Access-Request-Status": header_text(status),
        **{k: header_text(v) for k, v in (extra_headers or {}).items()},
        "MIME-Version": "1.0",
        **content,
    }
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return head.encode("ascii") + b"\r\n" + payload, headers
