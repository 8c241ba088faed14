"""Pre-send checks (DESIGN.md §4): each one failing and passing; a failing invoice is held with
its reasons and raises one review task; approving after the fix issues and sends it."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine

from billing.models import BillingReviewTask, Invoice, InvoiceDelivery, InvoiceLine
from billing.services import checks
from billing.services.invoicing import invoice_approve, invoice_po_record, invoice_recheck
from billing.services.triggers import contract_bill_due
from billing.tests.builders import amend, contract_with, hours

D = Decimal
RETAINER = {
    "kind": "recurring",
    "description": "Retainer",
    "amount": D("3100.00"),
    "frequency": "monthly",
    "timing": "advance",
}
TM = {
    "kind": "time_and_materials",
    "description": "Engineering",
    "amount": None,
    "frequency": "monthly",
    "timing": "arrears",
}


@pytest.fixture(autouse=True)
def now_in_march():
    with time_machine.travel(datetime(2026, 3, 20, 12, tzinfo=UTC), tick=False):
        yield


def draft(*lines, as_of=date(2026, 3, 1), **kwargs) -> Invoice:
    contract = contract_with(*(lines or (RETAINER,)), start=date(2026, 3, 1), auto_issue=False, **kwargs)
    (invoice,) = contract_bill_due(contract_id=contract.pk, as_of=as_of).invoices
    return fresh(invoice)


def fresh(invoice: Invoice) -> Invoice:
    return Invoice.objects.select_related("contract", "customer", "issuing_entity", "version").get(pk=invoice.pk)


# --------------------------------------------------------------------------- each check, failing and passing


def test_po_check_fails_when_the_contract_requires_a_po_and_none_is_given(in_tenant_a):
    invoice = draft(po_required=True, po_number="")
    (problem,) = checks.check_po_number(invoice)
    assert "requires a PO number" in problem and invoice.contract.number in problem


def test_po_check_passes_with_a_po_or_when_none_is_required(in_tenant_a):
    assert checks.check_po_number(draft(po_required=True, po_number="PO-1")) == []
    assert checks.check_po_number(draft(po_required=False, po_number="")) == []


def test_terms_check_fails_on_other_payment_terms_currency_or_issuing_entity(in_tenant_a):
    from contracts.tests.factories import IssuingEntityFactory

    invoice = draft(payment_terms_days=30)
    Invoice.objects.filter(pk=invoice.pk).update(
        payment_terms_days=45, currency="EUR", issuing_entity=IssuingEntityFactory()
    )
    problems = checks.check_terms_match_contract(fresh(invoice))
    assert len(problems) == 3
    assert "net 45 days" in problems[0] and "net 30" in problems[0]
    assert "in EUR" in problems[1] and "USD" in problems[1]
    assert "issued by" in problems[2]


def test_terms_check_passes_when_the_invoice_has_the_terms_in_force_at_its_first_period(in_tenant_a):
    invoice = draft(payment_terms_days=14)
    assert checks.check_terms_match_contract(invoice) == []
    assert checks.invoice_reference_date(invoice) == date(2026, 3, 1)


def test_terms_check_uses_the_version_in_force_at_the_first_period_start(in_tenant_a):
    contract = contract_with(RETAINER, start=date(2026, 1, 1), auto_issue=False, payment_terms_days=30)
    amend(contract, effective_from=date(2026, 3, 1), payment_terms_days=60)
    invoices = contract_bill_due(contract_id=contract.pk, as_of=date(2026, 3, 1)).invoices
    assert {i.payment_terms_days for i in invoices} == {30, 60}  # Jan+Feb under v1, Mar under v2
    assert all(checks.check_terms_match_contract(fresh(i)) == [] for i in invoices)


def test_rate_check_fails_when_a_line_is_not_at_the_contract_rate(in_tenant_a):
    invoice = draft()
    InvoiceLine.objects.filter(invoice=invoice).update(unit_amount=D("2900.00"))
    (problem,) = checks.check_rates_match_contract(fresh(invoice))
    assert "2,900.00 USD" in problem and "3,100.00 USD" in problem


def test_rate_check_passes_at_the_contract_rate_prorated_and_by_role(in_tenant_a):
    assert checks.check_rates_match_contract(draft()) == []
    prorated = contract_with(RETAINER, start=date(2026, 3, 15), auto_issue=False)
    (invoice,) = contract_bill_due(contract_id=prorated.pk, as_of=date(2026, 3, 15)).invoices
    assert fresh(invoice).lines.get().unit_amount == D("1700.00")  # 17/31 of 3,100
    assert checks.check_rates_match_contract(fresh(invoice)) == []
    tm = contract_with({**TM, "cap": None}, start=date(2026, 2, 1), auto_issue=False)
    hours(tm, 10, date(2026, 2, 10), line_ref="L1")
    (invoice,) = contract_bill_due(contract_id=tm.pk, as_of=date(2026, 3, 1)).invoices
    assert checks.check_rates_match_contract(fresh(invoice)) == []
    InvoiceLine.objects.filter(invoice=invoice).update(unit_amount=D("175"))
    assert "175.00 USD" in checks.check_rates_match_contract(fresh(invoice))[0]


def test_rate_check_accepts_an_active_price_override(in_tenant_a):
    from discounts.models import PriceOverride

    invoice = draft()
    InvoiceLine.objects.filter(invoice=invoice).update(unit_amount=D("2900.00"))
    contract = invoice.contract
    PriceOverride.objects.create(
        customer=contract.customer,
        contract=contract,
        line_ref="L1",
        rate=D("2900.00"),
        currency="USD",
        start_date=date(2026, 3, 1),
        end_date=date(2026, 5, 31),
        status="active",
        reason="Pilot",
    )
    assert checks.check_rates_match_contract(fresh(invoice)) == []


def test_discount_check_fails_for_a_discount_outside_its_window_and_passes_inside(in_tenant_a):
    from discounts.models import Discount, DiscountApplication

    invoice = draft()
    line = invoice.lines.get()
    discount = Discount.objects.create(
        kind="percentage",
        value=D("10"),
        scope="contract",
        customer=invoice.customer,
        contract=invoice.contract,
        start_date=date(2026, 3, 1),
        end_date=date(2026, 3, 31),
        status="active",
        reason="Launch",
    )
    DiscountApplication.objects.create(
        discount=discount,
        invoice=invoice,
        invoice_line=line,
        amount=D("310.00"),
        cycle_key="2026-03-01",
        coverage=D("1"),
        stage="invoice",
    )
    Invoice.objects.filter(pk=invoice.pk).update(discount_total=D("310.00"))
    assert checks.check_discounts_in_window(fresh(invoice)) == []
    Discount.objects.filter(pk=discount.pk).update(start_date=date(2026, 5, 1), end_date=date(2026, 5, 31))
    (problem,) = checks.check_discounts_in_window(fresh(invoice))
    assert "outside its window" in problem


def test_bill_to_check_fails_without_a_billing_email_and_passes_with_one(in_tenant_a):
    invoice = draft()
    assert checks.check_bill_to_email(invoice) == []
    invoice.customer.billing_emails = []
    invoice.customer.save()
    (problem,) = checks.check_bill_to_email(fresh(invoice))
    assert "no billing e-mail" in problem


# --------------------------------------------------------------------------- holding, the review task, approving


def test_a_failing_invoice_is_held_with_its_reasons_and_raises_one_review_task(in_tenant_a):
    contract = contract_with(RETAINER, start=date(2026, 1, 1), po_required=True, po_number="")
    (held,) = contract_bill_due(contract_id=contract.pk, as_of=date(2026, 1, 1)).invoices
    held = fresh(held)
    assert held.status == "draft" and len(held.hold_reasons) == 1 and "PO number" in held.hold_reasons[0]
    invoice_recheck(invoice_id=held.pk)  # checked again, still failing
    result = invoice_approve(invoice_id=held.pk)
    assert not result.issued and "PO number" in result.problems[0]
    task = BillingReviewTask.objects.get(invoice=held)
    assert task.kind == "presend_check" and task.status == "open" and "PO number" in task.detail


def test_approving_after_the_po_is_added_to_the_contract_issues_and_queues_the_email(
    in_tenant_a, django_capture_on_commit_callbacks, enqueued
):
    contract = contract_with(
        {"kind": "fixed_fee", "description": "Onboarding", "amount": D("5000.00"), "bill_on": date(2026, 3, 20)},
        start=date(2026, 1, 1),
        po_required=True,
        po_number="",
    )
    (held,) = contract_bill_due(contract_id=contract.pk, as_of=date(2026, 3, 20)).invoices
    assert fresh(held).hold_reasons
    amend(contract, effective_from=date(2026, 3, 20), po_number="PO-2026-118")  # finance got the PO
    with django_capture_on_commit_callbacks(execute=True):
        result = invoice_approve(invoice_id=held.pk, issue_date=date(2026, 3, 20))
    assert result.issued
    invoice = fresh(held)
    assert invoice.status == "issued" and invoice.po_number == "PO-2026-118" and invoice.version.version == 2
    assert invoice.hold_reasons == [] and invoice.due_date == date(2026, 4, 19)
    assert BillingReviewTask.objects.get(invoice=invoice).status == "resolved"
    delivery = InvoiceDelivery.objects.get(invoice=invoice)
    assert ("billing.tasks.invoice_delivery_send", {"delivery_id": delivery.pk}) in enqueued


def test_a_po_recorded_on_the_draft_lets_it_pass(in_tenant_a):
    invoice = draft(po_required=True, po_number="")
    invoice_po_record(invoice_id=invoice.pk, po_number="PO-ON-DRAFT")
    assert invoice_recheck(invoice_id=invoice.pk) == []
    assert fresh(invoice).hold_reasons == []
    assert invoice_approve(invoice_id=invoice.pk).issued
    assert fresh(invoice).po_number == "PO-ON-DRAFT"


def test_a_resolved_task_reopens_when_the_draft_fails_again(in_tenant_a):
    from billing.services.reviews import review_task_resolve

    invoice = draft(po_required=True, po_number="")
    assert not invoice_approve(invoice_id=invoice.pk).issued
    task = BillingReviewTask.objects.get(invoice=invoice)
    review_task_resolve(task_id=task.pk, note="Asked the customer for a PO")
    assert not invoice_approve(invoice_id=invoice.pk).issued
    task.refresh_from_db()
    assert task.status == "open" and BillingReviewTask.objects.filter(invoice=invoice).count() == 1


# --------------------------------------------------------------------------- hold reasons follow what is wrong now


def test_saving_the_po_on_a_held_draft_clears_requires_a_po_at_once(in_tenant_a):
    invoice = draft(po_required=True, po_number="")
    assert any("requires a PO" in reason for reason in invoice.hold_reasons)
    assert BillingReviewTask.objects.get(invoice=invoice).status == "open"
    invoice_po_record(invoice_id=invoice.pk, po_number="PO-7781")
    released = fresh(invoice)
    assert released.hold_reasons == [] and released.status == "draft"  # waits for approval, not issued
    task = BillingReviewTask.objects.get(invoice=invoice)
    assert task.status == "resolved" and "waits for approval" in task.resolution


def test_saving_the_po_keeps_only_the_reasons_that_still_hold(in_tenant_a):
    invoice = draft(po_required=True, po_number="")
    invoice.customer.billing_emails = []
    invoice.customer.save()
    invoice_recheck(invoice_id=invoice.pk)
    assert len(fresh(invoice).hold_reasons) == 2
    invoice_po_record(invoice_id=invoice.pk, po_number="PO-7781")
    (reason,) = fresh(invoice).hold_reasons
    assert "no billing e-mail" in reason and "PO" not in reason
    assert "PO" not in BillingReviewTask.objects.get(invoice=invoice).detail


def test_an_amendment_with_the_po_releases_the_held_draft(in_tenant_a):
    from contracts.services.contracts import contract_amend

    contract = contract_with(RETAINER, start=date(2026, 2, 1), auto_issue=False, po_required=True, po_number="")
    (february,) = contract_bill_due(contract_id=contract.pk, as_of=date(2026, 2, 1)).invoices
    (march,) = contract_bill_due(contract_id=contract.pk, as_of=date(2026, 3, 1)).invoices
    february, march = fresh(february), fresh(march)
    assert february.hold_reasons and march.hold_reasons
    # The PO covers the terms from March: the March draft is released, February still needs one.
    contract_amend(contract=contract, effective_from=date(2026, 3, 1), changes={"po_number": "PO-2026-9"})
    released = fresh(march)
    assert released.hold_reasons == [] and released.po_number == "PO-2026-9" and released.version.version == 2
    assert BillingReviewTask.objects.get(invoice=march).status == "resolved"
    assert "requires a PO" in fresh(february).hold_reasons[0]


def test_a_billing_email_added_to_the_customer_releases_the_held_draft(in_tenant_a):
    from contracts.services.customers import customer_update

    invoice = draft()
    invoice.customer.billing_emails = []
    invoice.customer.save()
    invoice_recheck(invoice_id=invoice.pk)
    assert fresh(invoice).hold_reasons
    customer_update(customer=invoice.customer, data={"billing_emails": ["ap@example.com"]})
    assert fresh(invoice).hold_reasons == []


def test_an_unrelated_change_does_not_reopen_a_task_someone_resolved(in_tenant_a):
    from billing.services.reviews import review_task_resolve
    from contracts.services.contracts import contract_update

    invoice = draft(po_required=True, po_number="")
    task = BillingReviewTask.objects.get(invoice=invoice)
    review_task_resolve(task_id=task.pk, note="Asked the customer for a PO")
    contract_update(contract=invoice.contract, data={"title": "Renamed"})
    task.refresh_from_db()
    assert task.status == "resolved" and fresh(invoice).hold_reasons  # still held, task left as resolved


def test_the_invoice_page_shows_the_po_saved_message_and_no_stale_reason(in_tenant_a):
    from django.urls import reverse

    from tests.helpers import client_for

    invoice = draft(po_required=True, po_number="")
    client = client_for(in_tenant_a, email=in_tenant_a.users["finance"])
    page = client.post(
        reverse("billing:invoice_po", kwargs={"invoice_id": invoice.pk}), {"po_number": "PO-55"}, follow=True
    )
    html = page.content.decode()
    assert "every check passes" in html and "requires a PO" not in html and 'id="hold-reasons"' not in html
