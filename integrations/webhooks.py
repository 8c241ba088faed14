"""Webhook endpoints at ``/webhooks/<source>/`` on the tenant's host (DESIGN.md §5).

Each answers fast: bound the body (1 MB) and its JSON nesting, verify the source's own signature
over the raw bytes, store the request in the inbox and enqueue processing on commit, answer. No
processing happens in the request, and no input produces a 500: every failure is a JSON answer
(Salesforce gets its SOAP Ack). Refused requests (bad signature, stale timestamp) are kept in the
inbox, marked rejected, for the admin to see; they are never processed.

URL routing: ``urlpatterns`` below lists this app's sources; ``revexos/urls.py`` includes every app's
webhook patterns under ``webhooks/`` (the Stripe endpoint belongs to collections).
"""

from __future__ import annotations

import json
import logging
import time

from django.http import HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from integrations import signatures
from integrations.models import Connection, InboxStatus, Source, Verdict
from integrations.services.connections import accepted_secrets
from integrations.services.inbox import inbox_receive
from integrations.sources import asana, hubspot, jira, linear, salesforce

logger = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024
MAX_DEPTH = 32
KEPT_HEADERS = (
    "Content-Type",
    "User-Agent",
    "X-Atlassian-Webhook-Identifier",
    "X-Atlassian-Webhook-Retry",
    "X-Hub-Signature",
    "Linear-Delivery",
    "Linear-Event",
    "Linear-Signature",
    "X-Hook-Signature",
    "X-HubSpot-Signature-v3",
    "X-HubSpot-Request-Timestamp",
    "SOAPAction",
)


class Refused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message}}, status=status)


def _headers(request) -> dict[str, str]:
    return {name: request.headers[name][:500] for name in KEPT_HEADERS if name in request.headers}


def _read_body(request) -> bytes:
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise Refused(400, "bad_request", "The Content-Length header is not a number.") from None
    if length > MAX_BODY:
        raise Refused(413, "too_large", f"The body is larger than {MAX_BODY // 1024} KB.")
    body = request.read(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        raise Refused(413, "too_large", f"The body is larger than {MAX_BODY // 1024} KB.")
    return body


def _depth_ok(value, limit: int = MAX_DEPTH) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return False
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return True


def _json(body: bytes, request):
    content_type = request.content_type or ""
    if content_type != "application/json":
        raise Refused(415, "unsupported_media_type", f"Send application/json, not {content_type or 'no content type'}.")
    if b"\x00" in body or b"\\u0000" in body:
        # PostgreSQL cannot store NUL in text or JSON; no source sends one.
        raise Refused(400, "bad_request", "The body contains a NUL character.")
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        raise Refused(400, "bad_request", "The body is not JSON.") from None
    if not _depth_ok(payload):
        raise Refused(400, "bad_request", f"The JSON is nested deeper than {MAX_DEPTH} levels.")
    return payload


def _connection(source: str) -> Connection:
    connection = Connection.objects.filter(source=source).first()
    if connection is None:
        raise Refused(404, "not_found", f"{Source(source).label} is not connected in this workspace.")
    if not connection.is_active:
        raise Refused(404, "not_found", f"{Source(source).label} is paused in this workspace; nothing was stored.")
    return connection


def _now_ms() -> int:
    return int(time.time() * 1000)


def _store_refused(connection: Connection, body: bytes, request, verdict: str, reason: str, event_id: str = ""):
    inbox_receive(
        connection=connection,
        body=body,
        headers=_headers(request),
        verdict=verdict,
        event_id=event_id or "-",
        status=InboxStatus.REJECTED,
        error=reason,
    )


def _accepted(row, duplicate: bool) -> JsonResponse:
    return JsonResponse({"status": "duplicate" if duplicate else "accepted", "id": row.pk, "event_id": row.event_id})


def _signed_json_webhook(request, source: str, verify, describe) -> JsonResponse:
    connection = _connection(source)
    body = _read_body(request)
    verdict = verify(connection, body, request)
    if verdict != Verdict.VALID:
        reason = {
            Verdict.MISSING: "The request is not signed.",
            Verdict.STALE: "The signed timestamp is too old (or too far ahead); the request may be a replay.",
        }.get(verdict, "The signature does not match this connection's secret.")
        _store_refused(connection, body, request, verdict, reason)
        raise Refused(401, "invalid_signature", reason)
    payload = _json(body, request)
    event_id, event_type, subject = describe(payload, request.headers)
    if not event_id:
        event_id = jira.fallback_event_id(body)
    row, duplicate = inbox_receive(
        connection=connection,
        body=body,
        headers=_headers(request),
        verdict=Verdict.VALID,
        event_id=event_id,
        event_type=event_type,
        subject=subject,
    )
    return _accepted(row, duplicate)


def _guarded(view):
    """Every refusal is a clear JSON answer; anything unexpected is logged and answered 500-free."""

    def wrapped(request, *args, **kwargs):
        if request.method != "POST":
            response = _error(405, "method_not_allowed", "Webhooks are POSTed.")
            response["Allow"] = "POST"
            return response
        try:
            return view(request, *args, **kwargs)
        except Refused as exc:
            return _error(exc.status, exc.code, exc.message)
        except Exception:
            logger.exception("webhook %s failed", request.path)
            return _error(503, "unavailable", "The event could not be stored; retry later.")

    wrapped.public_endpoint = True  # signed by the source, no session: see tests/test_roles.py
    return csrf_exempt(wrapped)


# --------------------------------------------------------------------------- sources


@_guarded
def jira_webhook(request):
    return _signed_json_webhook(
        request,
        Source.JIRA,
        lambda c, body, r: signatures.jira_verify(body=body, headers=r.headers, secrets=accepted_secrets(c)),
        jira.describe,
    )


@_guarded
def linear_webhook(request):
    return _signed_json_webhook(
        request,
        Source.LINEAR,
        lambda c, body, r: signatures.linear_verify(
            body=body, headers=r.headers, secrets=accepted_secrets(c), now_ms=_now_ms()
        ),
        linear.describe,
    )


@_guarded
def hubspot_webhook(request):
    def verify(connection, body, r):
        uri = r.build_absolute_uri()
        uris = {uri, "https://" + uri.split("://", 1)[1]}
        return signatures.hubspot_verify(
            body=body,
            headers=r.headers,
            secrets=accepted_secrets(connection),
            method=r.method,
            uris=uris,
            now_ms=_now_ms(),
        )

    return _signed_json_webhook(request, Source.HUBSPOT, verify, hubspot.describe)


@_guarded
def asana_webhook(request):
    connection = _connection(Source.ASANA)
    body = _read_body(request)
    handshake = request.headers.get("X-Hook-Secret", "").strip()
    if handshake:
        # Asana's handshake: accepted only while the connection waits for one (new, or after a rotation),
        # so nobody can swap the secret of an established webhook.
        if connection.secret:
            _store_refused(
                connection, b"", request, Verdict.INVALID, "A handshake arrived but the webhook is established."
            )
            raise Refused(409, "conflict", "This connection already has a secret; rotate it in RevExOS first.")
        if len(handshake) > 300:
            raise Refused(400, "bad_request", "The X-Hook-Secret is too long.")
        Connection.objects.filter(pk=connection.pk, secret="").update(secret=handshake)
        inbox_receive(
            connection=connection,
            body=b"",
            headers=_headers(request),
            verdict=Verdict.HANDSHAKE,
            event_id=f"handshake:{signatures.hmac_sha256_hex('asana', handshake.encode())[:32]}",
            event_type="handshake",
            status=InboxStatus.PROCESSED,
        )
        response = HttpResponse(status=200)
        response["X-Hook-Secret"] = handshake
        return response
    verdict = signatures.asana_verify(body=body, headers=request.headers, secrets=accepted_secrets(connection))
    if verdict != Verdict.VALID:
        reason = "The request is not signed." if verdict == Verdict.MISSING else "The signature does not match."
        _store_refused(connection, body, request, verdict, reason)
        raise Refused(401, "invalid_signature", reason)
    payload = _json(body, request)
    event_id, event_type, subject = asana.describe(payload, request.headers, body)
    row, duplicate = inbox_receive(
        connection=connection,
        body=body,
        headers=_headers(request),
        verdict=Verdict.VALID,
        event_id=event_id,
        event_type=event_type,
        subject=subject,
    )
    return _accepted(row, duplicate)


def _soap(ack: bool, status: int = 200) -> HttpResponse:
    return HttpResponse(
        salesforce.ACK.format(ack="true" if ack else "false"), status=status, content_type="text/xml; charset=utf-8"
    )


@_guarded
def salesforce_webhook(request):
    from integrations.services.connections import setting

    connection = _connection(Source.SALESFORCE)
    body = _read_body(request)
    if (request.content_type or "") not in ("text/xml", "application/xml", "application/soap+xml"):
        raise Refused(415, "unsupported_media_type", "Salesforce outbound messages are text/xml SOAP.")
    try:
        message = salesforce.parse(body)
    except salesforce.NotAnOutboundMessage as exc:
        raise Refused(400, "bad_request", str(exc)) from None
    if not salesforce.organization_matches(setting(connection, "organization_id"), message.organization_id):
        reason = f"Organization {message.organization_id or '(none)'} is not the one this connection accepts."
        _store_refused(connection, body, request, Verdict.INVALID, reason)
        raise Refused(401, "invalid_signature", reason)
    event_id, event_type, subject = salesforce.describe_message(message)
    inbox_receive(
        connection=connection,
        body=body,
        headers=_headers(request),
        verdict=Verdict.VALID,
        event_id=event_id or jira.fallback_event_id(body),
        event_type=event_type or "notifications",
        subject=subject,
    )
    # Stored (or stored before): acknowledge, so Salesforce stops redelivering.
    return _soap(True)


urlpatterns = [
    path("jira/", jira_webhook, name="webhook_jira"),
    path("linear/", linear_webhook, name="webhook_linear"),
    path("asana/", asana_webhook, name="webhook_asana"),
    path("hubspot/", hubspot_webhook, name="webhook_hubspot"),
    path("salesforce/", salesforce_webhook, name="webhook_salesforce"),
]
