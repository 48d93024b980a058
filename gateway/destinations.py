"""Which webhook destinations the gateway may reach (SPEC §8 `webhook.allow_*`).

The check at policy-write time only sees the URL; the delivery client repeats the address
check on the address it actually connects to, so that DNS cannot be used to slip past it.
Both the catalog's rules and the delivery stage import it, so it sits below both.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from gateway.config import WebhookConfig


def is_forbidden_address(address: str) -> bool:
    """Loopback, private, link-local, multicast, reserved or unspecified (IPv4-mapped too)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (
        ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    )


def url_problem(url: str, config: WebhookConfig) -> str | None:
    """Why a policy may not use this webhook URL, or None when it may."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "not a valid URL"
    del port
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return "expected an https:// URL"
    if parts.scheme == "http" and not config.allow_http:
        return "must use https:// (webhook.allow_http is off)"
    if parts.username is not None or parts.password is not None:
        return "must not carry credentials; sign requests with the secret instead"
    if parts.fragment:
        return "must not have a fragment"
    host = parts.hostname.rstrip(".").lower()
    if not config.allow_private_networks and (
        host == "localhost" or host.endswith(".localhost") or is_forbidden_address(host)
    ):
        return "points to a loopback, private or link-local address " \
               "(webhook.allow_private_networks is off)"
    return None
