"""Demo exceptions for the demo tenant: a few of each kind, some expiring this quarter.

Call inside the tenant's schema after the contracts are seeded (``contracts_demo_seed``); does
nothing when the tenant already has exceptions.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from django.db import transaction

from contracts.models import Contract, PriceLine
from discounts.impact import next_month, quarter_end
from discounts.models import Credit, Discount, PriceOverride
from discounts.services._common import tenant_today
from discounts.services.exceptions import credit_create, discount_create, price_override_create
from revexos.accounts.models import Role, User

D = Decimal


@transaction.atomic
def discounts_demo_seed(*, today: date | None = None) -> dict[str, int]:
    if Discount.objects.exists() or Credit.objects.exists() or PriceOverride.objects.exists():
        return {"discounts": 0, "credits": 0, "overrides": 0}
    today = today or tenant_today()
    finance = User.objects.filter(role__in=[Role.FINANCE, Role.ADMIN], is_active=True).order_by("-role", "pk").first()
    month_end = next_month(today)[0] - timedelta(days=1)
    recurring = list(
        Contract.objects.filter(status="active", start_date__lte=today, versions__price_lines__kind="recurring")
        .select_related("customer")
        .distinct()
        .order_by("number")[:6]
    )
    counts = {"discounts": 0, "credits": 0, "overrides": 0}
    plans = [
        {
            "kind": "percentage",
            "value": D("10"),
            "end_date": month_end,
            "reason": "Launch offer: 10 % until the end of the month",
        },
        {
            "kind": "percentage",
            "value": D("15"),
            "end_date": quarter_end(today),
            "reason": "Competitive match agreed with procurement",
        },
        {
            "kind": "fixed",
            "value": D("250.00"),
            "max_cycles": 3,
            "reason": "Onboarding credit: 250.00 off three invoices",
        },
        {
            "kind": "percentage",
            "value": D("5"),
            "end_date": quarter_end(quarter_end(today) + timedelta(days=1)),
            "reason": "Pilot pricing for the analytics add-on",
        },
        {
            "kind": "percentage",
            "value": D("3"),
            "no_expiry_reason": "Strategic partner rate approved by the board",
            "reason": "Partner discount",
        },
    ]
    for contract, plan in zip(recurring, plans, strict=False):
        currency = contract.versions.order_by("-effective_from").first().currency
        fields = dict(plan)
        if fields["kind"] == "fixed":
            fields["currency"] = currency
        discount_create(
            contract=contract,
            start_date=max(contract.start_date, today - timedelta(days=60)),
            created_by=finance,
            **fields,
        )
        counts["discounts"] += 1
    if recurring:
        customer = recurring[-1].customer
        credit_create(
            customer=customer,
            amount=D("1000.00"),
            currency=customer.currency,
            expires_on=quarter_end(today),
            reason="SLA credit for the March outage",
            created_by=finance,
        )
        counts["credits"] += 1
    tm = (
        PriceLine.objects.filter(kind="time_and_materials", version__contract__status="active")
        .select_related("version__contract")
        .prefetch_related("rates")
        .order_by("pk")
        .first()
    )
    if tm is not None and tm.rates.all():
        rate = tm.rates.all()[0]
        price_override_create(
            contract=tm.version.contract,
            line_ref=tm.line_ref,
            role=rate.role,
            rate=(rate.hourly_rate * D("0.8")).quantize(D("0.01")),
            start_date=today - timedelta(days=10),
            end_date=month_end,
            reason="Introductory rate for the first sprint",
            created_by=finance,
        )
        counts["overrides"] += 1
    return counts
