"""/webhooks/stripe/: Stripe-Signature over the raw body with the 300 s tolerance, each event stored
once by its id (also under concurrent redelivery), and the four event types handled.

Event bodies start from Stripe's own webhook fixtures (``data/``, from stripe-ruby-mock, MIT; API
version 2020-08-27) with the ids and metadata a RevExOS pay page sets."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import threading
import time
import uuid
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import connection
from django.test import Client
from django_tenants.utils import schema_context

from billing.models import BillingReviewTask, Invoice
from receivables.models import Payment, StripeAccount, StripeEvent
from receivables.services.stripe import stripe_account_connect
from receivables.tests.helpers import customer, issued_invoice, reload

DATA = Path(__file__).parent / "data"
SECRET = "whsec_test_" + "s3cr3t" * 4
D = Decimal


def sign(body: bytes, *, secret: str = SECRET, at: int | None = None) -> str:
    t = int(time.time()) if at is None else at
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def intent_event(
    invoice: Invoice, *, amount_minor: int, event_id: str | None = None, intent: str | None = None
) -> dict:
    event = json.loads((DATA / "payment_intent.succeeded.json").read_text())
    event["id"] = event_id or f"evt_{uuid.uuid4().hex[:24]}"
    event["created"] = int(time.time())
    obj = event["data"]["object"]
    obj["id"] = intent or f"pi_{uuid.uuid4().hex[:24]}"
    obj["amount"] = obj["amount_received"] = amount_minor
    obj["currency"] = invoice.currency.lower()
    obj["metadata"] = {
        "invoice_id": str(invoice.pk),
        "invoice_number": invoice.number,
        "tenant": connection.schema_name,
    }
    obj["charges"]["data"][0]["id"] = f"ch_{uuid.uuid4().hex[:24]}"
    obj["charges"]["data"][0]["payment_intent"] = obj["id"]
    return event


def deliver(host: str, body: bytes, signature: str | None):
    headers = {"HTTP_STRIPE_SIGNATURE": signature} if signature else {}
    return Client(HTTP_HOST=host).post("/webhooks/stripe/", data=body, content_type="application/json", **headers)


@pytest.fixture
def connected(in_tenant_a):
    stripe_account_connect(
        secret_key="sk_test_123456", publishable_key="pk_test_123456", webhook_secret=SECRET, verify=False
    )
    return in_tenant_a


@pytest.fixture
def open_invoice(connected):
    return issued_invoice(customer(), "120.00", issued=date(2026, 3, 1))


@pytest.mark.parametrize("case", ["bad_signature", "tampered_body", "too_old", "no_header", "other_secret", "not_json"])
def test_a_webhook_that_is_not_genuine_is_refused_with_400_and_nothing_is_stored(connected, open_invoice, case):
    body = json.dumps(intent_event(open_invoice, amount_minor=12000)).encode()
    signature = sign(body)
    if case == "bad_signature":
        signature = signature[:-4] + "0000"
    elif case == "tampered_body":
        body = body.replace(b'"amount": 12000', b'"amount": 12001')
    elif case == "too_old":
        signature = sign(body, at=int(time.time()) - 301)
    elif case == "no_header":
        signature = None
    elif case == "other_secret":
        signature = sign(body, secret="whsec_someone_else")
    elif case == "not_json":
        body = b"not json at all"
        signature = sign(body)
    response = deliver(connected.host, body, signature)
    assert response.status_code == 400, response.content
    assert not StripeEvent.objects.exists()
    assert not Payment.objects.filter(customer=open_invoice.customer).exists()
    assert reload(open_invoice).amount_paid == 0


def test_payment_intent_succeeded_records_a_card_payment_and_pays_the_invoice(connected, open_invoice):
    body = json.dumps(intent_event(open_invoice, amount_minor=12000)).encode()
    response = deliver(connected.host, body, sign(body))
    assert response.status_code == 200, response.content
    invoice = reload(open_invoice)
    assert invoice.status == "paid" and invoice.amount_open == 0
    payment = Payment.objects.get(customer=invoice.customer)
    assert payment.method == "card" and payment.source == "stripe" and payment.amount == D("120.00")
    assert payment.charge_id.startswith("ch_")


def test_the_same_event_delivered_five_times_records_one_payment(connected, open_invoice):
    body = json.dumps(intent_event(open_invoice, amount_minor=5000)).encode()
    answers = [deliver(connected.host, body, sign(body)) for _ in range(5)]
    assert [a.status_code for a in answers] == [200] * 5
    assert [a.json()["duplicate"] for a in answers] == [False, True, True, True, True]
    assert Payment.objects.filter(customer=open_invoice.customer).count() == 1
    assert reload(open_invoice).amount_open == D("70.00")


def test_the_same_intent_in_two_different_events_is_still_one_payment(connected, open_invoice):
    intent = f"pi_{uuid.uuid4().hex[:24]}"
    for _ in range(2):
        body = json.dumps(intent_event(open_invoice, amount_minor=5000, intent=intent)).encode()
        assert deliver(connected.host, body, sign(body)).status_code == 200
    assert Payment.objects.filter(customer=open_invoice.customer).count() == 1


def test_five_concurrent_deliveries_of_one_event_record_one_payment(committed_db, tenant_a):
    """Real concurrency: five threads, five database connections, one committed event."""
    with schema_context(tenant_a.schema):
        account = StripeAccount.objects.first()
        if account is None or account.webhook_secret != SECRET:
            stripe_account_connect(
                secret_key="sk_test_1", publishable_key="pk_test_1", webhook_secret=SECRET, verify=False
            )
        invoice = issued_invoice(customer(), "99.00", issued=date(2026, 3, 1))
        body = json.dumps(intent_event(invoice, amount_minor=9900)).encode()
    signature = sign(body)
    barrier = threading.Barrier(5)
    codes: list[int] = []

    def worker():
        barrier.wait()
        codes.append(deliver(tenant_a.host, body, signature).status_code)
        connection.close()

    threads = [threading.Thread(target=worker) for _ in range(5)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert codes == [200] * 5
        with schema_context(tenant_a.schema):
            assert Payment.objects.filter(customer=invoice.customer).count() == 1
            assert reload(invoice).status == "paid"
    finally:
        with schema_context(tenant_a.schema):  # committed: leave no Stripe account to later tests
            from receivables.services.stripe import stripe_account_disconnect

            stripe_account_disconnect()


def test_charge_refunded_reverses_the_payment_and_reopens_the_invoice(connected, open_invoice):
    event = intent_event(open_invoice, amount_minor=12000)
    body = json.dumps(event).encode()
    deliver(connected.host, body, sign(body))
    charge_id = event["data"]["object"]["charges"]["data"][0]["id"]

    refund = json.loads((DATA / "charge.refunded.json").read_text())
    refund["id"] = f"evt_{uuid.uuid4().hex[:24]}"
    refund["created"] = int(time.time())
    obj = refund["data"]["object"]
    obj.update(
        {
            "id": charge_id,
            "amount": 12000,
            "amount_refunded": 2000,
            "currency": "usd",
            "payment_intent": event["data"]["object"]["id"],
        }
    )
    body = json.dumps(refund).encode()
    assert deliver(connected.host, body, sign(body)).status_code == 200
    assert deliver(connected.host, body, sign(body)).json()["duplicate"] is True
    invoice = reload(open_invoice)
    assert invoice.amount_open == D("20.00") and invoice.status == "partially_paid"


def test_a_dispute_flags_the_invoice_stops_reminders_and_raises_a_review_task(connected, open_invoice):
    event = intent_event(open_invoice, amount_minor=12000)
    body = json.dumps(event).encode()
    deliver(connected.host, body, sign(body))
    dispute = copy.deepcopy(event)
    dispute["id"] = f"evt_{uuid.uuid4().hex[:24]}"
    dispute["type"] = "charge.dispute.created"
    dispute["data"]["object"] = {
        "id": f"dp_{uuid.uuid4().hex[:20]}",
        "object": "dispute",
        "amount": 12000,
        "currency": "usd",
        "charge": event["data"]["object"]["charges"]["data"][0]["id"],
        "reason": "fraudulent",
        "status": "needs_response",
        "payment_intent": event["data"]["object"]["id"],
    }
    body = json.dumps(dispute).encode()
    assert deliver(connected.host, body, sign(body)).status_code == 200
    invoice = reload(open_invoice)
    assert invoice.disputed_at is not None
    assert BillingReviewTask.objects.filter(invoice=invoice, kind="payment_dispute").count() == 1
    from receivables.services.dunning import dunning_candidates

    assert invoice.pk not in {i.pk for i in dunning_candidates(as_of=date(2026, 12, 1), earliest_offset=-3)}


def test_payment_failed_is_logged_on_the_invoice(connected, open_invoice):
    event = intent_event(open_invoice, amount_minor=12000)
    event["type"] = "payment_intent.payment_failed"
    event["data"]["object"]["last_payment_error"] = {"code": "card_declined", "message": "Your card was declined."}
    body = json.dumps(event).encode()
    assert deliver(connected.host, body, sign(body)).status_code == 200
    attempt = open_invoice.payment_attempts.get()
    assert attempt.status == "failed" and "declined" in attempt.last_error
    assert reload(open_invoice).amount_paid == 0


def test_keys_are_never_shown_back_in_full(connected):
    from receivables.services.stripe import stripe_account_current, stripe_account_masked

    masked = stripe_account_masked(stripe_account_current())
    assert masked["secret_key"] == "sk_test_…3456" and "123456" not in masked["secret_key"]
    assert masked["webhook_secret"].endswith(SECRET[-4:]) and SECRET not in masked["webhook_secret"]


def test_post_integrations_with_source_stripe_connects_the_account_here(in_tenant_a):
    api = Client(HTTP_HOST=in_tenant_a.host, HTTP_AUTHORIZATION=f"Bearer {in_tenant_a.api_key}")
    body = {
        "source": "stripe",
        "secret_key": "sk_test_abcdef1234",
        "publishable_key": "pk_test_abcdef9876",
        "secret": SECRET,
    }
    from unittest import mock

    with mock.patch("receivables.services.stripe.stripe_client") as client:  # Stripe accepts the key
        response = api.post("/api/v1/integrations", data=json.dumps(body), content_type="application/json")
        assert client.return_value.v1.balance.retrieve.called
    assert response.status_code == 201, response.content
    answer = response.json()
    assert answer["source"] == "stripe" and answer["webhook_url"].endswith("/webhooks/stripe/")
    assert SECRET not in json.dumps(answer) and "sk_test_abcdef1234" not in json.dumps(answer)
    assert StripeAccount.objects.get().secret_key == "sk_test_abcdef1234"
    listed = api.get("/api/v1/integrations").json()
    assert [c["source"] for c in listed if c["source"] == "stripe"] == ["stripe"]
    bad = api.post(
        "/api/v1/integrations",
        data=json.dumps({"source": "stripe", "secret_key": "nope"}),
        content_type="application/json",
    )
    assert bad.status_code == 422 and {"secret_key", "publishable_key", "webhook_secret"} <= set(
        bad.json()["error"]["fields"]
    )


@pytest.mark.parametrize("outcome", ["lost", "won"])
def test_a_lost_dispute_is_a_chargeback_that_reopens_the_invoice_and_a_won_one_clears_it(
    connected, open_invoice, outcome
):
    event = intent_event(open_invoice, amount_minor=12000)
    body = json.dumps(event).encode()
    deliver(connected.host, body, sign(body))
    dispute = {
        "id": f"dp_{uuid.uuid4().hex[:20]}",
        "object": "dispute",
        "amount": 12000,
        "currency": "usd",
        "charge": event["data"]["object"]["charges"]["data"][0]["id"],
        "reason": "fraudulent",
        "status": "needs_response",
        "payment_intent": event["data"]["object"]["id"],
    }
    for kind, status in (("charge.dispute.created", "needs_response"), ("charge.dispute.closed", outcome)):
        wrapped = copy.deepcopy(event)
        wrapped.update({"id": f"evt_{uuid.uuid4().hex[:24]}", "type": kind})
        wrapped["data"]["object"] = {**dispute, "status": status}
        body = json.dumps(wrapped).encode()
        assert deliver(connected.host, body, sign(body)).status_code == 200
    invoice = reload(open_invoice)
    assert invoice.disputed_at is None
    payment = Payment.objects.get(customer=invoice.customer)
    if outcome == "lost":
        assert invoice.amount_open == D("120.00") and invoice.status in ("sent", "issued")
        assert payment.refunds.get().kind == "chargeback" and payment.refunded == D("120.00")
    else:
        assert invoice.status == "paid" and not payment.refunds.exists()
