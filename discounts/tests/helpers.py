from __future__ import annotations

from datetime import date
from decimal import Decimal

from billing.cycle import cycle_run
from billing.models import Invoice
from billing.tests.builders import contract_with

D = Decimal
RETAINER = {
    "kind": "recurring",
    "description": "Retainer",
    "amount": D("1000.00"),
    "frequency": "monthly",
    "timing": "advance",
}
TM = {
    "kind": "time_and_materials",
    "description": "Extra engineering",
    "amount": None,
    "frequency": "",
    "timing": "",
    "cap": None,
}


def retainer_contract(amount="1000.00", start=date(2026, 1, 1), end=date(2026, 12, 31), **kw):
    return contract_with(dict(RETAINER, amount=D(amount)), start=start, end=end, **kw)


def run(as_of: date, only=("discounts", "billing")) -> dict:
    return cycle_run(as_of=as_of, only=list(only))


def invoices_of(contract) -> list[Invoice]:
    return list(Invoice.objects.filter(contract=contract).order_by("billing_date", "id"))


def discount_by_period(contract) -> dict[date, Decimal]:
    """period start of each billed recurring line -> discount taken off it."""
    from billing.models import InvoiceLine

    result = {}
    for line in InvoiceLine.objects.filter(invoice__contract=contract).prefetch_related("discount_applications"):
        result[line.period_start] = sum((a.amount for a in line.discount_applications.all()), D("0"))
    return result
