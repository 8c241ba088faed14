"""Which endpoint URLs RevExOS may call.

Always http(s) with a host. With ``WEBHOOKS_ALLOW_PRIVATE_URLS`` off (production settings), a URL
whose host is, or resolves to, a loopback, private, link-local, multicast or reserved address is
refused, so a tenant cannot make RevExOS probe its own network (SSRF). Checked when the endpoint
is saved and again before every delivery (the name may resolve elsewhere later).
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings


def _private(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


def endpoint_url_problem(url: str, *, allow_private: bool | None = None) -> str:
    """Why ``url`` may not receive webhooks, or "" when it may."""
    if allow_private is None:
        allow_private = getattr(settings, "WEBHOOKS_ALLOW_PRIVATE_URLS", False)
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return "Enter a full URL, e.g. https://example.com/hooks/revexos."
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "Webhook URLs start with https:// (or http://) and name a host."
    if parts.username or parts.password:
        return "Put no user name or password in the URL; verify the RevExOS-Signature header instead."
    if allow_private:
        return ""
    host = parts.hostname
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, port or 443, proto=socket.IPPROTO_TCP)}
    except (socket.gaierror, UnicodeError):
        return f"The host {host} cannot be resolved."
    if host.lower() == "localhost" or any(_private(a) for a in addresses):
        return f"The host {host} is a private or local address; webhooks go to public internet addresses only."
    return ""
