"""Jira → delivery event → milestone invoice, issued and e-mailed; unmatched keys; scope changes; the sweep."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import override_settings

from billing.models import BillingReviewTask, DeliveryEvent, Invoice, InvoiceLine
from billing.services.context import tenant_today
from billing.tests.builders import contract_with, unique
from billing.tests.smtp import SmtpSink
from integrations.models import InboxEvent
from integrations.services.connections import connection_create, mapping_set
from integrations.tests.payloads import dumps, jira_done, jira_headers, jira_scope_change


@pytest.fixture
def smtp():
    sink = SmtpSink().start()
    with override_settings(MAILERS=sink.mailers):
        yield sink
    sink.stop()


@pytest.fixture
def jira(in_tenant_a):
    return connection_create(data={"source": "jira"})


def milestone_contract(reference: str, **kwargs):
    today = tenant_today()
    return contract_with(
        {
            "kind": "milestone",
            "description": "Phase 1 go-live",
            "amount": Decimal("12000.00"),
            "frequency": "",
            "timing": "",
            "reference": reference,
        },
        start=today - timedelta(days=30),
        end=today + timedelta(days=300),
        **kwargs,
    )


def deliver(client, capture, body: bytes, secret: str, *, delivery=None):
    with capture(execute=True):
        return client.post(
            "/webhooks/jira/", body, content_type="application/json", **jira_headers(body, secret, delivery=delivery)
        )


def test_jira_done_on_proj_12_issues_and_emails_the_milestone_invoice_in_one_worker_pass(
    webhook_client, jira, worker, smtp, django_capture_on_commit_callbacks
):
    connection, secret = jira
    contract = milestone_contract("PROJ-12")
    response = deliver(webhook_client, django_capture_on_commit_callbacks, dumps(jira_done("PROJ-12")), secret)
    assert response.status_code == 200
    assert not Invoice.objects.filter(contract=contract).exists()  # the request only stored it

    worker.run_pass()

    event = InboxEvent.objects.get(connection=connection)
    assert event.status == "processed" and event.contract_id == contract.pk
    assert f"milestone PROJ-12 of {contract.number} delivered" in event.outcome
    (invoice,) = Invoice.objects.filter(contract=contract)
    assert invoice.status in ("issued", "sent") and invoice.number and invoice.total == Decimal("12000.00")
    (message,) = smtp.wait_for(1)
    assert message["To"] == contract.customer.billing_emails[0] and invoice.number in message["Subject"]


def test_the_same_jira_webhook_five_times_bills_once(
    webhook_client, jira, worker, smtp, django_capture_on_commit_callbacks
):
    connection, secret = jira
    contract = milestone_contract("PROJ-12")
    body = dumps(jira_done("PROJ-12"))
    for _ in range(5):
        assert (
            deliver(
                webhook_client, django_capture_on_commit_callbacks, body, secret, delivery="same-delivery"
            ).status_code
            == 200
        )
    # …and five distinct deliveries of the same fact (Jira retrying with new ids, or a re-transition).
    for _ in range(5):
        deliver(webhook_client, django_capture_on_commit_callbacks, dumps(jira_done("PROJ-12")), secret)
    worker.run_pass()
    assert InboxEvent.objects.filter(connection=connection).count() == 6
    assert DeliveryEvent.objects.filter(contract=contract).count() == 1
    assert InvoiceLine.objects.filter(contract=contract, kind="milestone").count() == 1
    assert len(smtp.wait_for(1)) == 1


def test_an_unknown_key_raises_one_review_task_and_no_invoice(
    webhook_client, jira, worker, django_capture_on_commit_callbacks
):
    connection, secret = jira
    for _ in range(2):
        deliver(webhook_client, django_capture_on_commit_callbacks, dumps(jira_done("PROJ-77")), secret)
    worker.run_pass()
    assert set(InboxEvent.objects.filter(connection=connection).values_list("status", flat=True)) == {"unmatched"}
    (task,) = BillingReviewTask.objects.filter(kind="unknown_milestone")
    assert task.title == "Jira PROJ-77 is done but no contract has a milestone with that reference"
    assert not DeliveryEvent.objects.exists() and not Invoice.objects.exists()


def test_a_story_point_change_on_a_mapped_project_raises_a_scope_review(
    webhook_client, jira, worker, django_capture_on_commit_callbacks
):
    connection, secret = jira
    contract = milestone_contract(unique("WEB"))
    mapping_set(connection=connection, kind="project", external="WEB", contract_ref=contract.number)
    deliver(
        webhook_client, django_capture_on_commit_callbacks, dumps(jira_scope_change("WEB-7", project="WEB")), secret
    )
    worker.run_pass()
    (task,) = BillingReviewTask.objects.filter(kind="scope_change", contract=contract)
    assert "Story Points: 5 → 8" in task.detail and "WEB-7" in task.detail


def test_events_stored_while_the_broker_was_down_are_processed_by_the_runs_api(
    webhook_client, api, jira, monkeypatch, django_capture_on_commit_callbacks
):
    connection, secret = jira
    contract = milestone_contract("PROJ-12")
    monkeypatch.setattr("billing.services.enqueue.task_send", lambda *a, **k: None)  # the broker lost it
    deliver(webhook_client, django_capture_on_commit_callbacks, dumps(jira_done("PROJ-12")), secret)
    assert InboxEvent.objects.get(connection=connection).status == "pending"
    response = api.post(
        "/api/v1/runs",
        {"as_of": tenant_today().isoformat(), "only": ["integrations", "billing"], "wait": True},
        content_type="application/json",
    )
    assert response.status_code in (200, 202), response.content
    assert InboxEvent.objects.get(connection=connection).status == "processed"
    assert InvoiceLine.objects.filter(contract=contract, kind="milestone").count() == 1


def test_a_failed_event_is_recorded_whole_and_can_be_replayed(
    webhook_client, jira, worker, monkeypatch, django_capture_on_commit_callbacks
):
    from integrations.services import projects
    from integrations.services.inbox import inbox_event_replay

    connection, secret = jira
    milestone_contract("PROJ-12")
    real = projects.milestone_done
    monkeypatch.setattr(projects, "milestone_done", lambda **kw: (_ for _ in ()).throw(RuntimeError("database hiccup")))
    deliver(webhook_client, django_capture_on_commit_callbacks, dumps(jira_done("PROJ-12")), secret)
    worker.run_pass()
    event = InboxEvent.objects.get(connection=connection)
    assert event.status == "failed" and "database hiccup" in event.error and not DeliveryEvent.objects.exists()
    monkeypatch.setattr(projects, "milestone_done", real)
    with django_capture_on_commit_callbacks(execute=True):
        inbox_event_replay(event_pk=event.pk)
    worker.run_pass()
    event.refresh_from_db()
    assert event.status == "processed" and DeliveryEvent.objects.count() == 1


def test_a_linear_issue_completed_delivers_the_milestone_with_its_identifier(
    webhook_client, in_tenant_a, worker, django_capture_on_commit_callbacks
):
    from integrations.tests.payloads import linear_headers, linear_issue_completed

    secret = "linear-signing-secret-0123"
    connection, _ = connection_create(data={"source": "linear", "secret": secret})
    contract = milestone_contract("ENG-42")
    body = dumps(linear_issue_completed("ENG-42"))
    with django_capture_on_commit_callbacks(execute=True):
        response = webhook_client.post(
            "/webhooks/linear/", body, content_type="application/json", **linear_headers(body, secret)
        )
    assert response.status_code == 200
    worker.run_pass()
    assert InboxEvent.objects.get(connection=connection).status == "processed"
    assert InvoiceLine.objects.filter(contract=contract, kind="milestone").count() == 1


def test_pausing_a_connection_from_its_page_refuses_its_webhooks(in_tenant_a, jira, webhook_client):
    from tests.helpers import client_for

    connection, secret = jira
    admin = client_for(in_tenant_a, email=in_tenant_a.users["admin"])
    assert admin.post("/integrations/jira/settings/", {"change_label": "scope-change"}).status_code == 302
    connection.refresh_from_db()
    assert not connection.is_active and connection.settings["change_label"] == "scope-change"
    body = dumps(jira_done("PROJ-12"))
    assert (
        webhook_client.post(
            "/webhooks/jira/", body, content_type="application/json", **jira_headers(body, secret)
        ).status_code
        == 404
    )
