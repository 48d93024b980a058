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


def _part(content_type: str, text: str, eightbit: bool) -> bytes:
    encoding, payload = _body(text, eightbit)
    return (f"Content-Type: {content_type}; charset=utf-8\r\n"
            f"Content-Transfer-Encoding: {encoding}\r\n\r\n").encode("ascii") + payload


def build_message(*, sender: str, to: str, subject: str, body: str, message_id: str,
                  request_key: str, status: str, eightbit: bool,
                  extra_headers: dict[str, str] | None = None,
                  html: str | None = None) -> tuple[bytes, dict[str, str]]:
    """The message's bytes, and its headers as sent (for the delivery record).

    With `html`, a multipart/alternative message: the plain text first, then the HTML.
    """
    if html is None:
        encoding, payload = _body(body, eightbit)
        content = {"Content-Type": "text/plain; charset=utf-8",
                   "Content-Transfer-Encoding": encoding}
    else:
        boundary = "=_" + hashlib.sha256((message_id + body).encode()).hexdigest()[:32]
        payload = b"".join([
            f"--{boundary}\r\n".encode(), _part("text/plain", body, eightbit),
            f"\r\n--{boundary}\r\n".encode(), _part("text/html", html, eightbit),
            f"\r\n--{boundary}--\r\n".encode(),
        ])
        content = {"Content-Type": f'multipart/alternative; boundary="{boundary}"'}
    headers = {
        "From": header_text(sender),
        "To": header_text(to),
        "Subject": _encoded(subject),
        "Date": formatdate(usegmt=True),
        "Message-ID": header_text(message_id),
        "Auto-Submitted": "auto-generated",
        "X-Access-Request-Key": header_text(request_key),
        "X-Access-Request-Status": header_text(status),
        **{k: header_text(v) for k, v in (extra_headers or {}).items()},
        "MIME-Version": "1.0",
        **content,
    }
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return head.encode("ascii") + b"\r\n" + payload, headers
