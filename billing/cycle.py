"""Billing's steps of the scheduler's cycle (the registry itself is ``revexos/cycle.py``).

``cycle_step_register``, ``cycle_steps`` and ``cycle_run`` are re-exported here for the modules
above billing that have always imported them from this module; BillingConfig.ready() imports this
module, so billing's steps are registered whenever Django is set up.
"""

from __future__ import annotations

from datetime import date

from revexos.cycle import CycleStep, cycle_run, cycle_step_register, cycle_steps

__all__ = ["CycleStep", "cycle_run", "cycle_step_register", "cycle_steps"]


def _billing_run(*, as_of: date, contract_ids: list[int] | None = None) -> dict:
    from billing.services.runs import billing_run_chunked

    return billing_run_chunked(as_of=as_of, contract_ids=contract_ids)


def _billing_contract_ids(*, as_of: date) -> list[int]:
    from billing.services.runs import billable_contract_ids

    return billable_contract_ids(as_of=as_of)


def _billing_prepare(*, as_of: date) -> dict:
    from billing.services.ingestion import delivery_events_process_pending

    return {"delivery_events_processed": delivery_events_process_pending()}


def _billing_due(*, as_of: date) -> list:
    from billing.models import DeliveryEvent
    from contracts.models import Contract

    return [DeliveryEvent.objects.filter(processed_at__isnull=True), Contract.objects.all()]


cycle_step_register(
    "billing",
    order=50,
    run=_billing_run,
    contract_ids=_billing_contract_ids,
    prepare=_billing_prepare,
    due=_billing_due,
)


def _overdue_run(*, as_of: date, contract_ids: list[int] | None = None) -> dict:
    from billing.services.invoicing import invoices_overdue_publish

    return {"invoices_overdue_announced": invoices_overdue_publish(as_of=as_of)}


# After billing and collections: announces invoice.overdue to webhook endpoints, once per invoice.
def _overdue_due(*, as_of: date) -> list:
    from billing.models import Invoice

    return [Invoice.objects.exclude(status="draft")]


cycle_step_register("invoices_overdue", order=95, run=_overdue_run, due=_overdue_due)
