"""Building a small portfolio for insights tests: contracts, issued invoices, alerts, discounts."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

from billing.models import Invoice, InvoiceLine
from billing.tests.builders import contract_with
from contracts.tests.factories import CustomerFactory

D = Decimal
ZERO = Decimal(0)
_numbers = itertools.count(1)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def customer(currency: str = "USD", **kwargs):
    suffix = uuid.uuid4().hex[:8]
    return CustomerFactory(
        currency=currency,
        external_id=f"ins-{suffix}",
        legal_name=kwargs.pop("legal_name", f"Insight {suffix} Ltd"),
        **kwargs,
    )


CONTRACT_FIELDS = ("auto_renew", "renewal_uplift_pct", "renewal_term_months", "owner", "title", "notice_period_days")


def contract(*lines, customer_obj=None, currency="USD", **kwargs):
    """contract_with() plus contract fields (auto_renew, renewal_uplift_pct, owner…) and a shared customer."""
    fields = {k: kwargs.pop(k) for k in list(kwargs) if k in CONTRACT_FIELDS}
    if customer_obj is not None:
        fields["customer"] = customer_obj
    c = contract_with(*lines, currency=currency, **kwargs)
    if fields:
        for name, value in fields.items():
            setattr(c, name, value)
        c.save()
    return c


def invoice(
    contract,
    *,
    lines,
    status="issued",
    issue_date=date(2026, 1, 1),
    due_days=30,
    currency=None,
    amount_due=None,
    discount_total=ZERO,
    credited_total=ZERO,
):
    """An invoice with lines ``[(kind, line_ref, period_start, period_end, amount)]`` as billing stores it."""
    version = contract.versions.order_by("effective_from").first()
    currency = currency or version.currency
    subtotal = sum((D(str(a)) for *_, a in lines), D("0"))
    total = subtotal - discount_total
    issued = status != "draft"
    # Lines go onto a draft (the database refuses lines on an issued invoice), then it is issued.
    inv = Invoice.objects.create(
        contract=contract,
        customer=contract.customer,
        issuing_entity=contract.issuing_entity,
        version=version,
        status="draft",
        currency=currency,
        billing_date=issue_date,
        payment_terms_days=due_days,
        subtotal=subtotal,
        discount_total=discount_total,
        total=total,
        amount_due=total if amount_due is None else D(str(amount_due)),
    )
    for position, (kind, ref, start, end, amount) in enumerate(lines, start=1):
        InvoiceLine.objects.create(
            invoice=inv,
            contract=contract,
            position=position,
            kind=kind,
            description=f"{kind} {ref}",
            amount=D(str(amount)),
            unit_amount=D(str(amount)),
            period_start=start,
            period_end=end,
            line_ref=ref,
            billing_key=f"test:{uuid.uuid4().hex}",
        )
    if issued:
        Invoice.objects.filter(pk=inv.pk).update(
            status=status,
            number=f"INS-{uuid.uuid4().hex[:10]}",
            issue_date=issue_date,
            due_date=date.fromordinal(issue_date.toordinal() + due_days),
            credited_total=credited_total,
            issued_at=datetime.combine(issue_date, datetime.min.time(), tzinfo=UTC),
        )
        inv.refresh_from_db()
    return inv


def alert(contract, *, status="open", currency="USD", annual="0", proposed_terms=None):
    from datetime import timedelta

    from renewals.models import RenewalAlert

    end = contract.end_date
    return RenewalAlert.objects.create(
        contract=contract,
        end_date=end,
        raised_at=datetime(2026, 1, 1, tzinfo=UTC),
        raised_on=date(2026, 1, 1),
        window_days=60,
        window_start=end - timedelta(days=60),
        notice_deadline=end - timedelta(days=30),
        currency=currency,
        annual_recurring_value=D(annual),
        value_at_stake=D(annual),
        remaining_value=D("0"),
        status=status,
        owner=contract.owner,
        proposed_terms=proposed_terms or {},
    )


def discount(
    contract, *, value="10", end=None, start=date(2026, 1, 1), kind="percentage", max_cycles=None, scope="contract"
):
    from discounts.models import Discount

    return Discount.objects.create(
        kind=kind,
        value=D(value),
        currency=contract.versions.first().currency if kind == "fixed" else "",
        scope=scope,
        customer=contract.customer,
        contract=contract if scope == "contract" else None,
        start_date=start,
        end_date=end,
        max_cycles=max_cycles,
        status="active",
        reason="test",
        no_expiry_reason="" if (end or max_cycles) else "test",
    )
