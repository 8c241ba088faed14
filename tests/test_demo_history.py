"""The demo's past reads as billed by RevExOS month by month or through a cut-over (issue #14): the
seed ``make run`` uses never makes a catch-up invoice covering many months, the customer moved from
Xero is billed only from this month with its Xero invoices as history, and the audit is ready."""

from __future__ import annotations

from datetime import timedelta

from django_tenants.utils import schema_context


def test_the_demo_has_no_catch_up_invoice_and_its_cut_over_bills_only_this_month(tenant_demo, committed_db):
    from audits.models import Audit, AuditStatus
    from billing.models import InvoiceLine
    from billing.models_history import ExternalInvoice
    from contracts.models import Contract
    from revexos.dates import tenant_today

    with schema_context(tenant_demo.schema):
        # A catch-up invoice bills periods long past: month by month, a run on the 1st bills at most
        # the month just ended (arrears, or the stub of a contract signed late in it) and the new one.
        catch_up = [
            (line.invoice.number, line.description)
            for line in InvoiceLine.objects.filter(kind="recurring", period_end__isnull=False).select_related("invoice")
            if line.invoice.billing_date and line.period_end < line.invoice.billing_date - timedelta(days=32)
        ]
        assert catch_up == []

        this_month = tenant_today().replace(day=1)
        moved = Contract.objects.get(customer__external_id="brightwater-logistics")
        assert moved.billed_through == this_month - timedelta(days=1)
        periods = set(InvoiceLine.objects.filter(contract=moved).values_list("period_start", flat=True))
        assert periods == {this_month}
        assert ExternalInvoice.objects.filter(contract=moved).count() >= 9  # Xero's months before the move

        assert Audit.objects.filter(status=AuditStatus.READY).exists()
