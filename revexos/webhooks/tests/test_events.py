"""The events each module publishes, in the transaction of its change (one per change, by key)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine

from revexos.webhooks.events import EVENT_TYPES
from revexos.webhooks.models import WebhookEvent
from revexos.webhooks.services import endpoint_create


@pytest.fixture
def listening(in_tenant_a):
    return endpoint_create(data={"url": "http://127.0.0.1:9/hooks", "events": list(EVENT_TYPES)})


def events(kind: str) -> list[WebhookEvent]:
    return list(WebhookEvent.objects.filter(type=kind).order_by("id"))


def test_contracts_announce_activation_and_amendments(listening):
    from contracts.services.contracts import contract_amend, contract_create
    from contracts.services.customers import customer_create
    from contracts.tests.factories import contract_payload, customer_payload

    with time_machine.travel(datetime(2026, 1, 10, 12, tzinfo=UTC), tick=False):
        customer_create(data=customer_payload(external_id="evt-acme"))
        contract = contract_create(data=contract_payload(customer="evt-acme", number="C-EVT-1"))
        (activated,) = events("contract.activated")
        assert (
            activated.data["contract"]["number"] == "C-EVT-1" and activated.key == f"contract.activated:{contract.pk}"
        )
        version = contract_amend(
            contract=contract, effective_from="2026-03-01", changes={"po_number": "PO-9", "reason": "New PO"}
        )
    (amended,) = events("contract.amended")
    assert amended.data["version"] == version.version and amended.data["effective_from"] == "2026-03-01"


def test_credit_notes_and_overdue_invoices_are_announced_once(listening):
    from billing.services.invoicing import credit_note_create, invoices_overdue_publish
    from billing.services.triggers import contract_bill_due
    from billing.tests.builders import contract_with

    contract = contract_with(
        {"kind": "fixed_fee", "description": "Setup", "amount": Decimal("800.00"), "bill_on": date(2026, 3, 2)},
        payment_terms_days=14,
    )
    with time_machine.travel(datetime(2026, 3, 2, 12, tzinfo=UTC), tick=False):
        (invoice,) = contract_bill_due(contract_id=contract.pk, as_of=date(2026, 3, 2)).invoices
        note = credit_note_create(invoice_id=invoice.pk, amount="100.00", reason="Goodwill")
    (credited,) = events("credit_note.issued")
    assert credited.data["credit_note"] == {
        "id": str(note.pk), "number": note.number, "invoice": invoice.number, "currency": "USD", "amount": "100.00",
        "tax_amount": "0.00", "issue_date": note.issue_date.isoformat(), "reason": "Goodwill",
    }  # fmt: skip
    assert invoices_overdue_publish(as_of=date(2026, 3, 16)) == 0  # due on the 16th: not overdue yet
    assert invoices_overdue_publish(as_of=date(2026, 3, 17)) == 1
    assert invoices_overdue_publish(as_of=date(2026, 3, 18)) == 0  # once per invoice
    (overdue,) = events("invoice.overdue")
    assert overdue.data["invoice"]["number"] == invoice.number and overdue.data["invoice"]["amount_open"] == "700.00"
