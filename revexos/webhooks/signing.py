"""The signature on every outbound webhook (the Stripe scheme).

Header ``RevExOS-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>" keyed with the
endpoint's secret>``. Receivers recompute it over the raw request bytes, compare in constant time,
and reject timestamps older than a few minutes (replays). ``signature_verify`` is the reference
implementation, the same code as the snippet in the API reference.
"""

from __future__ import annotations

import hashlib
import hmac
import time

HEADER = "RevExOS-Signature"
TOLERANCE_SECONDS = 300


def signature_header(*, secret: str, body: bytes, timestamp: int) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def signature_verify(*, secret: str, body: bytes, header: str, tolerance: int = TOLERANCE_SECONDS, now=None) -> bool:
    """True when ``header`` signs ``body`` with ``secret`` and is not older than ``tolerance`` seconds."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (ValueError, KeyError):
        return False
    if abs((now if now is not None else time.time()) - timestamp) > tolerance:
        return False
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    candidates = [v for k, v in (item.split("=", 1) for item in header.split(",")) if k == "v1"]
    return any(hmac.compare_digest(expected, c) for c in candidates)
