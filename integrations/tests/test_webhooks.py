"""Webhook endpoints: each signature scheme, bad input everywhere, idempotent storage, fast answers."""

from __future__ import annotations

import json
import time

import pytest

from integrations.models import Connection, InboxEvent
from integrations.services.connections import connection_create, connection_secret_rotate
from integrations.tests.payloads import (
    dumps,
    hubspot_headers,
    hubspot_won,
    jira_done,
    jira_headers,
    linear_headers,
    linear_issue_completed,
)

SECRET = "pasted-secret-0123456789"


@pytest.fixture
def jira(in_tenant_a):
    connection, secret = connection_create(data={"source": "jira"})
    return connection, secret


def post(client, path, body: bytes, content_type="application/json", **headers):
    return client.post(path, body, content_type=content_type, **headers)


def test_a_signed_jira_event_is_stored_pending_and_enqueued_on_commit(
    webhook_client, jira, worker, django_capture_on_commit_callbacks
):
    connection, secret = jira
    body = dumps(jira_done("PROJ-77"))
    with django_capture_on_commit_callbacks(execute=True):
        response = post(webhook_client, "/webhooks/jira/", body, **jira_headers(body, secret, delivery="d-1"))
    assert response.status_code == 200 and response.json()["status"] == "accepted"
    event = InboxEvent.objects.get(connection=connection)
    assert (event.status, event.verdict, event.event_id, event.subject) == ("pending", "valid", "d-1", "PROJ-77")
    assert bytes(event.body) == body and event.headers["X-Atlassian-Webhook-Identifier"] == "d-1"
    assert [(name, kw) for name, kw, _ in worker.queue] == [
        ("integrations.tasks.inbox_event_process", {"event_pk": event.pk})
    ]
    again = post(webhook_client, "/webhooks/jira/", body, **jira_headers(body, secret, delivery="d-1"))
    assert again.json() == {"status": "duplicate", "id": event.pk, "event_id": "d-1"}
    assert InboxEvent.objects.filter(connection=connection).count() == 1


@pytest.mark.parametrize(
    "tamper",
    ["wrong secret", "tampered body", "no signature"],
)
def test_a_badly_signed_jira_event_is_refused_and_never_processed(webhook_client, jira, worker, tamper):
    connection, secret = jira
    body = dumps(jira_done("PROJ-12"))
    headers = jira_headers(body, "another-secret-entirely" if tamper == "wrong secret" else secret)
    if tamper == "tampered body":
        body = body.replace(b"PROJ-12", b"PROJ-13")
    if tamper == "no signature":
        headers.pop("HTTP_X_HUB_SIGNATURE")
    response = post(webhook_client, "/webhooks/jira/", body, **headers)
    assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_signature"
    (event,) = InboxEvent.objects.filter(connection=connection)
    assert event.status == "rejected" and event.processed_at is None and not worker.queue


def test_a_rotated_secret_keeps_the_old_one_for_the_grace_period(webhook_client, jira):
    connection, old = jira
    new = connection_secret_rotate(connection_id=connection.pk)
    body = dumps(jira_done("PROJ-1"))
    assert post(webhook_client, "/webhooks/jira/", body, **jira_headers(body, old)).status_code == 200
    assert post(webhook_client, "/webhooks/jira/", body, **jira_headers(body, new)).status_code == 200
    Connection.objects.filter(pk=connection.pk).update(previous_secret_expires_at="2000-01-01T00:00:00Z")
    assert post(webhook_client, "/webhooks/jira/", body, **jira_headers(body, old)).status_code == 401


def test_bad_input_gets_a_clear_answer_and_never_a_500(webhook_client, jira):
    connection, secret = jira

    def send(body: bytes, content_type="application/json"):
        return post(webhook_client, "/webhooks/jira/", body, content_type, **jira_headers(body, secret))

    not_json = send(b"{not json")
    assert not_json.status_code == 400 and "not JSON" in not_json.json()["error"]["message"]
    wrong_type = send(b"a=1", "application/x-www-form-urlencoded")
    assert wrong_type.status_code == 415
    too_big = send(b'{"x": "' + b"a" * (1024 * 1024) + b'"}')
    assert too_big.status_code == 413
    deep = send(b"[" * 40 + b"]" * 40)
    assert deep.status_code == 400 and "nested" in deep.json()["error"]["message"]
    very_deep = send(b"[" * 100_000 + b"]" * 100_000)
    assert very_deep.status_code in (400, 413)
    assert webhook_client.get("/webhooks/jira/").status_code == 405
    assert not InboxEvent.objects.filter(connection=connection, status="pending").exists()


def test_an_unknown_event_type_is_stored_ignored_and_answered_200(
    webhook_client, jira, worker, django_capture_on_commit_callbacks
):
    connection, secret = jira
    body = dumps({"webhookEvent": "jira:worklog_updated", "timestamp": 1})
    with django_capture_on_commit_callbacks(execute=True):
        response = post(webhook_client, "/webhooks/jira/", body, **jira_headers(body, secret))
    assert response.status_code == 200
    worker.run_pass()
    event = InboxEvent.objects.get(connection=connection)
    assert event.status == "ignored" and "jira:worklog_updated" in event.outcome


def test_a_source_that_is_not_connected_answers_404(webhook_client, in_tenant_a):
    response = post(webhook_client, "/webhooks/linear/", b"{}")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def test_linear_refuses_a_stale_timestamp_and_accepts_a_fresh_one(webhook_client, in_tenant_a):
    connection_create(data={"source": "linear", "secret": SECRET})
    stale = dumps(linear_issue_completed(at_ms=int(time.time() * 1000) - 120_000))
    assert post(webhook_client, "/webhooks/linear/", stale, **linear_headers(stale, SECRET)).status_code == 401
    fresh = dumps(linear_issue_completed())
    assert post(webhook_client, "/webhooks/linear/", fresh, **linear_headers(fresh, SECRET)).status_code == 200
    assert (
        post(webhook_client, "/webhooks/linear/", fresh, **linear_headers(fresh, "wrong-secret-wrong")).status_code
        == 401
    )
    assert list(InboxEvent.objects.order_by("id").values_list("verdict", flat=True)) == ["stale", "valid", "invalid"]


def test_hubspot_v3_checks_uri_body_and_timestamp(webhook_client, in_tenant_a):
    connection_create(data={"source": "hubspot", "secret": SECRET, "api_token": "pat-na1-test"})
    uri = f"http://{in_tenant_a.host}/webhooks/hubspot/"
    body = dumps(hubspot_won("9001"))
    assert post(webhook_client, "/webhooks/hubspot/", body, **hubspot_headers(body, SECRET, uri=uri)).status_code == 200
    old = hubspot_headers(body, SECRET, uri=uri, at_ms=int(time.time() * 1000) - 301_000)
    assert post(webhook_client, "/webhooks/hubspot/", body, **old).status_code == 401
    elsewhere = hubspot_headers(body, SECRET, uri=uri.replace("/hubspot/", "/jira/"))
    assert post(webhook_client, "/webhooks/hubspot/", body, **elsewhere).status_code == 401


def test_the_asana_handshake_echoes_the_secret_once_and_then_signatures_are_checked(webhook_client, in_tenant_a):
    from integrations.signatures import hmac_sha256_hex

    connection, _ = connection_create(data={"source": "asana", "api_token": "1/123:abc"})
    response = webhook_client.post(
        "/webhooks/asana/", b"", content_type="application/json", HTTP_X_HOOK_SECRET="hook-secret-from-asana"
    )
    assert response.status_code == 200 and response["X-Hook-Secret"] == "hook-secret-from-asana"
    connection.refresh_from_db()
    assert connection.secret == "hook-secret-from-asana"
    # A second handshake cannot replace an established secret.
    hijack = webhook_client.post(
        "/webhooks/asana/", b"", content_type="application/json", HTTP_X_HOOK_SECRET="attacker"
    )
    assert hijack.status_code == 409
    body = json.dumps(
        {"events": [{"action": "changed", "resource": {"gid": "1201", "resource_type": "task"}}]}
    ).encode()
    good = webhook_client.post(
        "/webhooks/asana/",
        body,
        content_type="application/json",
        HTTP_X_HOOK_SIGNATURE=hmac_sha256_hex("hook-secret-from-asana", body),
    )
    assert good.status_code == 200
    bad = webhook_client.post(
        "/webhooks/asana/",
        body,
        content_type="application/json",
        HTTP_X_HOOK_SIGNATURE=hmac_sha256_hex("attacker", body),
    )
    assert bad.status_code == 401


def test_tenant_b_cannot_use_tenant_as_connection(jira, tenant_b):
    from django.test import Client

    _connection, secret = jira
    body = dumps(jira_done("PROJ-12"))
    response = Client(HTTP_HOST=tenant_b.host).post(
        "/webhooks/jira/", body, content_type="application/json", **jira_headers(body, secret)
    )
    assert response.status_code == 404  # tenant B has no Jira connection; tenant A's secret opens nothing there


def test_a_nul_character_is_refused_before_anything_is_stored(webhook_client, jira):
    connection, secret = jira
    body = dumps({"webhookEvent": "jira:issue_updated", "issue": {"key": "PROJ-\u0000"}})
    response = post(webhook_client, "/webhooks/jira/", body, **jira_headers(body, secret))
    assert response.status_code == 400 and "NUL" in response.json()["error"]["message"]
    assert not InboxEvent.objects.filter(connection=connection, verdict="valid").exists()
