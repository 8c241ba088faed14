"""Demo history and ledger for the ``demo`` tenant: a year billed month by month, then paid.

``collections_demo_history`` runs the scheduler's billing as of each month start from the earliest
contract start, so every invoice carries its real past issue date (and was e-mailed then), instead
of one catch-up invoice per contract on the day the demo is created. It then replays the days from
the first invoice to yesterday: customers pay by their habits (prompt, on time, slow, partial, by
card), and the dunning step runs each day, so reminders went out when they were due. The result
is a realistic ledger: paid, partly paid and overdue invoices, a dunning history with a final
notice, unapplied cash, one disputed card payment and a paused customer — so AR aging, DSO and
days to pay show real figures. Deterministic (seeded) and relative to today.
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import OuterRef, Subquery
from django.utils import timezone

ZERO = Decimal("0")

# Payment habits by customer: (kind, lateness range in days after the due date).
HABITS = {
    "bluepeak-analytics": ("prompt", (-6, 0)),
    "cobalt-freight": ("on_time", (0, 6)),
    "harbor-finch": ("overpays", (0, 4)),
    "lumen-health": ("slow", (12, 30)),
    "meridian-retail": ("partial", (5, 20)),
    "northshore-bank": ("prompt", (-3, 1)),
    "orchid-biotech": ("on_time", (0, 8)),
    "pinecrest-hotels": ("slow", (18, 40)),
    "quarry-media": ("on_time", (1, 9)),
    "redwood-energy": ("on_time", (0, 5)),
    "silverline-insurance": ("prompt", (-4, 0)),
    "tidewater-ports": ("slow", (10, 25)),
    "umbra-games": ("stopped", (30, 45)),  # stopped paying about four months ago
    "vantage-mobility": ("on_time", (2, 10)),
    "willow-education": ("slow", (15, 35)),
    "yellowtail-foods": ("on_time", (0, 7)),
    "zephyr-aviation": ("paused", (20, 30)),  # agreed a payment plan: reminders paused
    "atlas-construction": ("stopped", (25, 50)),
    "kestrel-payments": ("card", (0, 3)),
    "fjord-marketplace": ("on_time", (0, 6)),
}
STOPPED_DAYS = 125
METHODS = {"on_time": "bank_transfer", "prompt": "bank_transfer", "slow": "bank_transfer", "card": "card"}


def _at(day: date, hour: int = 10) -> datetime:
    return timezone.make_aware(datetime.combine(day, time(hour)))


def demo_stripe_connect() -> bool:
    """Connect the demo workspace to the development Stripe server (localstripe) or to the test
    keys in the environment; False when neither is configured."""
    import os

    from receivables.services.stripe import stripe_account_connect

    if settings.STRIPE_API_KEY:
        publishable = os.environ.get("STRIPE_PUBLISHABLE_KEY", "")
        secret = settings.STRIPE_WEBHOOK_SECRET
        if not publishable or not secret:
            return False
        stripe_account_connect(secret_key=settings.STRIPE_API_KEY, publishable_key=publishable, webhook_secret=secret)
        return True
    if settings.STRIPE_API_BASE:
        stripe_account_connect(
            secret_key="sk_test_northwind_demo_0000",
            publishable_key="pk_test_northwind_demo_0000",
            webhook_secret="whsec_northwind_demo_" + "d" * 24,
            verify=False,
        )
        return True
    return False


def _history_billing(*, today: date) -> int:
    from billing.cycle import cycle_run
    from contracts.models import Contract

    first = Contract.objects.exclude(status="draft").order_by("start_date").values_list("start_date", flat=True).first()
    if first is None:
        return 0
    # A year of history is what the dashboards show; anything older is caught up by the first run.
    first = max(first, date(today.year - 1, today.month, 1))
    month = date(first.year, first.month, 1)
    runs = 0
    while month < today:
        if month >= first.replace(day=1):
            cycle_run(as_of=month, only=["discounts", "billing"])
            runs += 1
        month = date(month.year + (month.month == 12), month.month % 12 + 1, 1)
    return runs


def _mark_history_sent(*, before: date) -> None:
    """E-mails of the history went out on their day; the worker must not send them again now."""
    from billing.models import DeliveryStatus, Invoice, InvoiceDelivery

    issued_at = Subquery(Invoice.objects.filter(pk=OuterRef("invoice_id")).values("issue_date")[:1])
    InvoiceDelivery.objects.filter(status=DeliveryStatus.QUEUED, kind="initial", invoice__issue_date__lt=before).update(
        status=DeliveryStatus.SENT, sent_at=issued_at, next_attempt_at=None, attempts=1
    )
    Invoice.objects.filter(status="issued", issue_date__lt=before).update(status="sent")
    Invoice.objects.filter(sent_at__isnull=True, issue_date__lt=before).exclude(status="draft").update(
        sent_at=Subquery(Invoice.objects.filter(pk=OuterRef("pk")).values("issue_date")[:1])
    )


def _plan_payments(*, today: date, rng: random.Random) -> dict[date, list[tuple]]:
    """What each customer pays and when: {day: [(invoice, amount, method, note)]}."""
    from billing.models import Invoice

    plan: dict[date, list[tuple]] = defaultdict(list)
    invoices = (
        Invoice.objects.exclude(status__in=["draft", "void"])
        .filter(issue_date__lt=today)
        .select_related("customer")
        .order_by("issue_date", "pk")
    )
    overpaid = False
    for invoice in invoices:
        kind, (low, high) = HABITS.get(invoice.customer.external_id, ("on_time", (0, 7)))
        lateness = rng.randint(low, high)
        day = invoice.due_date + timedelta(days=lateness)
        day = max(day, invoice.issue_date + timedelta(days=2))
        amount = invoice.amount_open
        if amount <= 0:
            continue
        if kind == "stopped" and invoice.due_date > today - timedelta(days=STOPPED_DAYS):
            continue  # the overdue book: never paid
        if kind == "paused" and invoice.due_date > today - timedelta(days=75):
            continue
        if kind == "partial":
            half = (amount / 2).quantize(Decimal("1"))
            plan[day].append((invoice, half, "bank_transfer", "First instalment"))
            plan[day + timedelta(days=rng.randint(20, 40))].append((invoice, amount - half, "bank_transfer", "Balance"))
            continue
        method = METHODS.get(kind, "bank_transfer")
        if kind == "overpays" and not overpaid and invoice.due_date > today - timedelta(days=90):
            # Paid a round sum, more than the invoice: the rest stays on account for the next one.
            overpaid = True
            plan[day].append((invoice, amount + Decimal("1250.00"), "bank_transfer", "Paid in advance"))
            continue
        plan[day].append((invoice, amount, method, ""))
    return plan


def collections_demo_history(*, today: date | None = None, seed: int = 20260301) -> dict:
    """Bill the demo's history month by month, then replay payments and reminders day by day."""
    from billing.models import Invoice, InvoiceDelivery
    from contracts.models import Customer
    from receivables.models import DunningNotice, Payment
    from receivables.services.dunning import dunning_pause, dunning_send_due, dunning_steps_ensure
    from receivables.services.ledger import payment_record
    from revexos.dates import tenant_today

    if Payment.objects.exists():
        return {}
    today = today or tenant_today()
    rng = random.Random(seed)
    stripe = demo_stripe_connect()
    runs = _history_billing(today=today)
    _mark_history_sent(before=today)
    dunning_steps_ensure()
    paused = Customer.objects.filter(external_id="zephyr-aviation").first()

    plan = _plan_payments(today=today, rng=rng)
    # Reminders change only on a step's day or a payment's day: replay just those days (the same
    # outcome as a daily run, in a fraction of the time).
    steps = [s.offset_days for s in dunning_steps_ensure() if s.active]
    days = set(plan)
    for due in Invoice.objects.exclude(status__in=["draft", "void"]).values_list("due_date", flat=True):
        days.update(due + timedelta(days=offset) for offset in steps)
    pause_day = today - timedelta(days=40)
    days.add(pause_day)
    payments = 0
    card_payment = None
    for day in sorted(d for d in days if d < today):
        if paused is not None and day == pause_day:
            dunning_pause(customer=paused, reason="Payment plan agreed with their CFO: two instalments in the new year")
        for invoice, amount, method, note in plan.get(day, []):
            invoice = Invoice.objects.get(pk=invoice.pk)
            take = min(amount, invoice.amount_open)
            if invoice.amount_open <= 0:
                continue
            result = payment_record(
                customer=invoice.customer,
                amount=amount,
                currency=invoice.currency,
                received_on=day,
                method=method,
                reference=f"{invoice.number} {note}".strip(),
                payer_name=invoice.customer.legal_name,
                allocations=[(invoice, take)],
                source="stripe" if method == "card" else "demo",
                external_id=f"demo:{invoice.pk}:{day.isoformat()}",
                charge_id=f"ch_demo_{invoice.pk}" if method == "card" else "",
            )
            payments += 1
            if method == "card" and day > today - timedelta(days=60):
                card_payment = result.payment
        dunning_send_due(as_of=day)
    # Reminders of the history were e-mailed on their day.
    for notice in DunningNotice.objects.filter(delivery__isnull=False).select_related("delivery"):
        InvoiceDelivery.objects.filter(pk=notice.delivery_id, status="queued").update(
            status="sent", sent_at=_at(notice.sent_on, 9), next_attempt_at=None, attempts=1
        )
    disputed = _demo_dispute(card_payment, today=today) if card_payment is not None else ""
    return {
        "monthly_runs": runs,
        "payments": payments,
        "reminders": DunningNotice.objects.count(),
        "stripe": stripe,
        "disputed": disputed,
    }


def _demo_dispute(payment, *, today: date) -> str:
    """One recent card payment is disputed by the cardholder (as Stripe would report it)."""
    from receivables.services.stripe import _dispute_created, to_minor

    obj = {
        "id": f"dp_demo_{payment.pk}",
        "charge": payment.charge_id,
        "amount": to_minor(payment.amount, payment.currency),
        "currency": payment.currency.lower(),
        "reason": "product_not_received",
        "status": "needs_response",
    }
    created = int(_at(today - timedelta(days=3)).timestamp())
    return _dispute_created(obj, created=created)


def collections_demo_finish(*, today: date | None = None) -> str:
    """After the demo's cycle as of today: a deposit received last week for a contract that starts
    soon, so the workspace opens with unapplied cash (it pays that contract's first invoice)."""
    from contracts.models import Contract
    from receivables.models import Payment
    from receivables.services.ledger import payment_record
    from revexos.dates import tenant_today

    today = today or tenant_today()
    if Payment.objects.filter(external_id="demo:deposit").exists():
        return ""
    upcoming = (
        Contract.objects.filter(start_date__gt=today).select_related("customer").order_by("start_date").first()
        or Contract.objects.select_related("customer").order_by("-start_date").first()
    )
    if upcoming is None:
        return ""
    customer = upcoming.customer
    payment_record(
        customer=customer,
        amount=Decimal("5000.00"),
        currency=upcoming.versions.order_by("-effective_from").first().currency,
        received_on=today - timedelta(days=5),
        method="ach",
        reference=f"Deposit for {upcoming.number}",
        payer_name=customer.legal_name,
        allocations=[],
        source="demo",
        external_id="demo:deposit",
    )
    return f"deposit of 5,000.00 from {customer.legal_name} on account"
