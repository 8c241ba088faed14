"""Each source's own webhook signature scheme, over the raw request bytes (pure: no ORM, no I/O).

Every verifier takes the raw body, the request headers (case-insensitive mapping) and the secrets
accepted right now (the current one and, during a rotation's grace period, the previous one), and
answers a :class:`Verdict` value. Comparisons are constant-time.

- Jira Cloud: ``X-Hub-Signature: sha256=<hex>``, HMAC-SHA256 of the body with the webhook secret.
- Linear: ``Linear-Signature: <hex>``, HMAC-SHA256 of the body; ``webhookTimestamp`` (ms, in the
  body) within 60 s of now.
- Asana: ``X-Hook-Signature: <hex>``, HMAC-SHA256 of the body with the secret from the handshake.
- HubSpot v3: ``X-HubSpot-Signature-v3`` = base64 HMAC-SHA256 of method + URI + body + timestamp
  (``X-HubSpot-Request-Timestamp``, ms), timestamp within 300 s.
- Salesforce Outbound Messages carry no HMAC: the message names its organization, which must be
  the configured one (checked where the SOAP body is read, ``integrations.sources.salesforce``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from urllib.parse import unquote

LINEAR_WINDOW_MS = 60_000
HUBSPOT_WINDOW_MS = 300_000

VALID, INVALID, STALE, MISSING = "valid", "invalid", "stale", "missing"


def hmac_sha256_hex(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _any_matches(given: str, expected: Iterable[str]) -> bool:
    # Compare against every accepted secret (no early exit on the first mismatch's content).
    found = False
    for value in expected:
        found |= hmac.compare_digest(given.encode(), value.encode())
    return found


def _secrets(secrets: Iterable[str]) -> list[str]:
    return [s for s in secrets if s]


def jira_verify(*, body: bytes, headers: Mapping[str, str], secrets: Iterable[str]) -> str:
    header = (headers.get("X-Hub-Signature") or "").strip()
    if not header:
        return MISSING
    method, _, digest = header.partition("=")
    if method.lower() != "sha256" or not digest:
        return INVALID
    return VALID if _any_matches(digest.lower(), [hmac_sha256_hex(s, body) for s in _secrets(secrets)]) else INVALID


def linear_verify(*, body: bytes, headers: Mapping[str, str], secrets: Iterable[str], now_ms: int) -> str:
    header = (headers.get("Linear-Signature") or "").strip()
    if not header:
        return MISSING
    if not _any_matches(header.lower(), [hmac_sha256_hex(s, body) for s in _secrets(secrets)]):
        return INVALID
    try:
        stamp = json.loads(body).get("webhookTimestamp")
    except (ValueError, AttributeError, RecursionError):
        return INVALID
    if not isinstance(stamp, int) or isinstance(stamp, bool) or abs(now_ms - stamp) > LINEAR_WINDOW_MS:
        return STALE
    return VALID


def asana_verify(*, body: bytes, headers: Mapping[str, str], secrets: Iterable[str]) -> str:
    header = (headers.get("X-Hook-Signature") or "").strip()
    if not header:
        return MISSING
    return VALID if _any_matches(header.lower(), [hmac_sha256_hex(s, body) for s in _secrets(secrets)]) else INVALID


def hubspot_v3_signature(*, secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    message = method.upper().encode() + uri.encode() + body + timestamp.encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def hubspot_verify(
    *, body: bytes, headers: Mapping[str, str], secrets: Iterable[str], method: str, uris: Iterable[str], now_ms: int
) -> str:
    """``uris``: the URL as HubSpot may have called it (behind a proxy the scheme may differ)."""
    header = (headers.get("X-HubSpot-Signature-v3") or "").strip()
    timestamp = (headers.get("X-HubSpot-Request-Timestamp") or "").strip()
    if not header or not timestamp:
        return MISSING
    # HubSpot signs the URI with URL-encoded characters decoded (except the query's ? and =).
    candidates = {u for uri in uris for u in (uri, unquote(uri))}
    expected = [
        hubspot_v3_signature(secret=s, method=method, uri=u, body=body, timestamp=timestamp)
        for s in _secrets(secrets)
        for u in candidates
    ]
    if not _any_matches(header, expected):
        return INVALID
    if not timestamp.isdigit() or abs(now_ms - int(timestamp)) > HUBSPOT_WINDOW_MS:
        return STALE
    return VALID
