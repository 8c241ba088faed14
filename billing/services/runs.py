"""Billing runs: every contract of the tenant evaluated as of a date, each in its own transaction."""

from __future__ import annotations

import logging
from collections import Counter
from datetime import date

from django.db import transaction
from django.utils import timezone

from billing.models import BillingRun, BillingRunStatus, InvoiceStatus, ReviewTaskKind
from billing.selectors import contract_versions_many
from billing.services.context import current_tenant
from billing.services.reviews import review_task_raise
from billing.services.triggers import BILLABLE_CONTRACT_STATUSES, contract_bill_due

logger = logging.getLogger(__name__)

SUMMARY_INVOICE_LIMIT = 1000
PRELOAD = 500  # a run over thousands of contracts lists the first ones and counts the rest


def billable_contract_ids(*, as_of: date) -> list[int]:
    from contracts.models import Contract

    return list(
        Contract.objects.filter(status__in=BILLABLE_CONTRACT_STATUSES, start_date__lte=as_of)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def billing_run(*, as_of: date, contract_ids: list[int] | None = None) -> dict:
    """Bill what is due for each contract as of ``as_of``; a failing contract does not stop the others.

    Each contract commits on its own, so a run killed half-way keeps the contracts it finished and
    the rerun does the rest (their billing keys make the finished ones no-ops).
    """
    ids = billable_contract_ids(as_of=as_of) if contract_ids is None else list(contract_ids)
    counts: Counter = Counter()
    invoices: list[dict] = []
    errors: list[dict] = []
    tenant = current_tenant()
    terms: dict[int, list] = {}
    for position, contract_id in enumerate(ids):
        if position % PRELOAD == 0:
            # Terms for the next slice in 4 queries instead of 4 per contract.
            terms = contract_versions_many(contract_ids=ids[position : position + PRELOAD])
        try:
            result = contract_bill_due(
                contract_id=contract_id, as_of=as_of, versions=terms.get(contract_id), tenant=tenant
            )
        except Exception as exc:  # logged and surfaced as a review task; the other contracts still bill
            logger.exception("billing contract %s as of %s failed", contract_id, as_of)
            errors.append({"contract": str(contract_id), "error": str(exc)[:500]})
            review_task_raise(
                kind=ReviewTaskKind.BILLING_ERROR,
                dedupe_key=f"billing-error:{contract_id}:{as_of}",
                title=f"Billing contract #{contract_id} as of {as_of} failed",
                detail=str(exc)[:2000],
                contract_id=contract_id,
            )
            continue
        counts["contracts"] += 1
        for invoice in result.invoices:
            counts["invoices_created"] += 1
            counts["invoices_issued" if invoice.status == InvoiceStatus.ISSUED else "invoices_held"] += 1
            if len(invoices) < SUMMARY_INVOICE_LIMIT:
                invoices.append(
                    {
                        "id": str(invoice.pk),
                        "number": invoice.number,
                        "status": invoice.status,
                        "contract": invoice.contract.number,
                        "currency": invoice.currency,
                        "total": str(invoice.total),
                        "hold_reasons": invoice.hold_reasons,
                    }
                )
    return {
        "contracts_evaluated": counts["contracts"],
        "invoices_created": counts["invoices_created"],
        "invoices_issued": counts["invoices_issued"],
        "invoices_held": counts["invoices_held"],
        "invoices": invoices,
        "errors": errors,
    }


def run_create(*, as_of: date, only: list[str] | None, trigger: str = "api") -> BillingRun:
    return BillingRun.objects.create(as_of=as_of, only=list(only or []), trigger=trigger)


def run_execute(*, run_id) -> BillingRun:
    """Execute a recorded run (sync API call or the async task) and store its summary."""
    from billing.cycle import cycle_run

    with transaction.atomic():
        run = BillingRun.objects.select_for_update().get(pk=run_id)
        if run.status != BillingRunStatus.QUEUED:
            return run  # a redelivered task: the run already happened or is happening
        run.status, run.started_at = BillingRunStatus.RUNNING, timezone.now()
        run.save(update_fields=["status", "started_at"])
    try:
        summary = cycle_run(as_of=run.as_of, only=run.only or None)
    except Exception as exc:
        BillingRun.objects.filter(pk=run.pk).update(
            status=BillingRunStatus.FAILED, error=str(exc)[:2000], finished_at=timezone.now()
        )
        raise
    run.summary, run.status, run.finished_at = summary, BillingRunStatus.SUCCEEDED, timezone.now()
    run.save(update_fields=["summary", "status", "finished_at"])
    return run
