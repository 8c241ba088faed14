"""Planted leaks for the ``demo`` tenant: one realistic case of each rule L1–L10.

Runs after the contracts and discounts seeds and BEFORE the demo's first cycle, so each leak must
be one billing itself cannot see or repair — which is exactly why they are leaks:

* invoices imported from the customer's previous billing system (numbers ``LEGACY-…``) that carry
  billing keys, so billing treats their periods as done: one under the contract rate (L6), one with
  the wrong payment terms and PO (L8), one usage invoice without the minimum top-up (L9), one for a
  fixed fee with hours logged after it (L7), one retainer period voided by a credit note and never
  re-billed (L10);
* a milestone marked invoiced in the project tool with no invoice (L1), hours under a role missing
  from the rate card (L2), usage sent under a misspelt metric (L3), a discount with no expiry (L4),
  a contract brought inside its notice period (L5; the cycle raises its alert, nobody decides).

Deterministic, relative to today, idempotent (a second call plants nothing: it checks for LEGACY-).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from billing.models import Invoice, InvoiceLine, TimeEntry, UsageEvent
from revexos.dates import tenant_today, tenant_zone
from revexos.money import quantize
from revexos.pricing import add_months

ZERO = Decimal(0)


def _month_start(day: date, months_back: int) -> date:
    return add_months(day.replace(day=1), -months_back)


def _month_end(start: date) -> date:
    return add_months(start, 1) - timedelta(days=1)


class _Legacy:
    def __init__(self):
        self.n = 0

    def invoice(
        self, contract, version, billing_date: date, lines: list[dict], *, payment_terms_days=None, po_number=None
    ) -> Invoice:
        self.n += 1
        terms = version.payment_terms_days if payment_terms_days is None else payment_terms_days
        invoice = Invoice.objects.create(
            contract=contract,
            customer=contract.customer,
            issuing_entity=contract.issuing_entity,
            version=version,
            currency=version.currency,
            billing_date=billing_date,
            payment_terms_days=terms,
            po_number=version.po_number if po_number is None else po_number,
        )
        total = ZERO
        for position, spec in enumerate(lines):
            spec = {"quantity": Decimal(1), **spec}
            spec["amount"] = quantize(spec["amount"], version.currency)
            InvoiceLine.objects.create(invoice=invoice, contract=contract, position=position, **spec)
            total += spec["amount"]
        Invoice.objects.filter(pk=invoice.pk).update(
            status="issued",
            number=f"LEGACY-{billing_date:%Y}-{self.n:04d}",
            issue_date=billing_date,
            due_date=billing_date + timedelta(days=terms),
            subtotal=total,
            total=total,
            amount_due=total,
            issued_at=timezone.now(),
        )
        invoice.refresh_from_db()
        return invoice


def _line_of(contract, kind: str, **filters):
    filters.pop("minimum", None)
    versions = list(contract.versions.order_by("effective_from").prefetch_related("price_lines__rates"))
    for version in versions:
        for line in version.price_lines.all():
            if line.kind == kind and all(getattr(line, k) == v for k, v in filters.items()):
                return version, line
    return None, None


def _pick(contracts, kind: str, used: set, *, calendar: bool = True, **filters):
    """The first unused contract with a line of ``kind`` on calendar-aligned terms (periods start on the 1st)."""
    for contract in contracts:
        if contract.pk in used:
            continue
        version, line = _line_of(contract, kind, **filters)
        if calendar and version is not None and version.billing_anchor != "calendar":
            continue
        if line is not None and (not filters.get("minimum") or line.minimum_commitment):
            used.add(contract.pk)
            return contract, version, line
    return None, None, None


def leakage_demo_seed(*, today: date | None = None) -> dict[str, int]:
    from contracts.models import Contract, Milestone, MilestoneStatus
    from discounts.models import Discount

    if Invoice.objects.filter(number__startswith="LEGACY-").exists():
        return {}
    today = today or tenant_today()
    zone = tenant_zone()
    contracts = list(
        Contract.objects.filter(status="active", start_date__lte=today - timedelta(days=100)).order_by("number")
    )
    used: set[int] = set()
    planted: dict[str, int] = {}
    legacy = _Legacy()
    # The last month whose billing run had its day of grace (insights.leakage.BILLING_GRACE): on the
    # 1st, the month that closed yesterday is not a leak yet, so the month before it is used.
    last_month = _month_start(today - timedelta(days=1), 1)
    with transaction.atomic():
        # L6: a retainer month billed from the legacy system at last year's rate (10 % below).
        contract, version, line = _pick(contracts, "recurring", used, timing="advance")
        if contract:
            start = _month_start(today, 2)
            if start >= contract.start_date:
                unit = quantize(line.amount * Decimal("0.9"), version.currency)
                legacy.invoice(
                    contract,
                    version,
                    start,
                    [
                        {
                            "kind": "recurring",
                            "description": f"{line.description} {start:%b %Y}",
                            "unit_amount": unit,
                            "amount": unit,
                            "period_start": start,
                            "period_end": _month_end(start),
                            "price_line": line,
                            "line_ref": line.line_ref,
                            "billing_key": f"recurring:{contract.pk}:{line.line_ref}:{start}",
                            "source": {
                                "days": (_month_end(start) - start).days + 1,
                                "period_days": (_month_end(start) - start).days + 1,
                            },
                        }
                    ],
                )
                planted["L6"] = 1
        # L8: right amount, wrong terms (net 60 instead of the contract's, no PO).
        contract, version, line = _pick(contracts, "recurring", used, timing="advance")
        if contract:
            start = _month_start(today, 3)
            if start >= contract.start_date:
                legacy.invoice(
                    contract,
                    version,
                    start,
                    [
                        {
                            "kind": "recurring",
                            "description": f"{line.description} {start:%b %Y}",
                            "unit_amount": line.amount,
                            "amount": line.amount,
                            "period_start": start,
                            "period_end": _month_end(start),
                            "price_line": line,
                            "line_ref": line.line_ref,
                            "billing_key": f"recurring:{contract.pk}:{line.line_ref}:{start}",
                            "source": {
                                "days": (_month_end(start) - start).days + 1,
                                "period_days": (_month_end(start) - start).days + 1,
                            },
                        }
                    ],
                    payment_terms_days=version.payment_terms_days + 30,
                    po_number="",
                )
                planted["L8"] = 1
        # L10: a retainer month invoiced, disputed and voided by a credit note, never billed again.
        contract, version, line = _pick(contracts, "recurring", used, timing="advance")
        if contract:
            from billing.services.invoicing import credit_note_create

            start = _month_start(today, 2)
            if start >= contract.start_date:
                invoice = legacy.invoice(
                    contract,
                    version,
                    start,
                    [
                        {
                            "kind": "recurring",
                            "description": f"{line.description} {start:%b %Y}",
                            "unit_amount": line.amount,
                            "amount": line.amount,
                            "period_start": start,
                            "period_end": _month_end(start),
                            "price_line": line,
                            "line_ref": line.line_ref,
                            "billing_key": f"recurring:{contract.pk}:{line.line_ref}:{start}",
                            "source": {
                                "days": (_month_end(start) - start).days + 1,
                                "period_days": (_month_end(start) - start).days + 1,
                            },
                        }
                    ],
                )
                credit_note_create(
                    invoice_id=invoice.pk,
                    amount=invoice.total,
                    reason="Disputed: wrong cost centre; to be re-issued",
                    issue_date=start + timedelta(days=20),
                )
                planted["L10"] = 1
        # L9: a usage month billed from the legacy system without the minimum-commitment top-up.
        contract, version, line = _pick(contracts, "usage", used, minimum=True)
        if contract:
            start = last_month if contract.start_date <= last_month.replace(day=1) else None
            if start and version.billing_anchor == "calendar":
                small = quantize(line.minimum_commitment / 4, version.currency)
                legacy.invoice(
                    contract,
                    version,
                    add_months(last_month, 1),
                    [
                        {
                            "kind": "usage",
                            "description": f"{line.description} {start:%b %Y}",
                            "unit_amount": small,
                            "amount": small,
                            "period_start": start,
                            "period_end": _month_end(start),
                            "price_line": line,
                            "line_ref": line.line_ref,
                            "billing_key": f"usage:{contract.pk}:{line.line_ref}:{start}",
                        }
                    ],
                )
                planted["L9"] = 1
        # L7: a fixed fee invoiced by the legacy system, then 3 more weeks of work booked against it.
        contract, version, line = _pick(contracts, "fixed_fee", used, calendar=False)
        if contract:
            billed_on = max(contract.start_date, today - timedelta(days=90))
            legacy.invoice(
                contract,
                version,
                billed_on,
                [
                    {
                        "kind": "fixed_fee",
                        "description": line.description,
                        "unit_amount": line.amount,
                        "amount": line.amount,
                        "price_line": line,
                        "line_ref": line.line_ref,
                        "billing_key": f"fixed:{contract.pk}:{line.line_ref}",
                    }
                ],
            )
            for i in range(12):
                TimeEntry.objects.get_or_create(
                    external_id=f"demo-leak-l7-{contract.pk}-{i}",
                    defaults={
                        "contract": contract,
                        "person": "Ana Costa",
                        "role": "engineer",
                        "work_date": billed_on + timedelta(days=7 + i),
                        "hours": Decimal(6),
                        "description": "Extra integration work after sign-off",
                        "line_ref": line.line_ref,
                    },
                )
            planted["L7"] = 1
        # L2: hours under a role the rate card does not have ("solution architect").
        contract, version, line = _pick(contracts, "time_and_materials", used, calendar=False)
        if contract:
            for i in range(5):
                TimeEntry.objects.get_or_create(
                    external_id=f"demo-leak-l2-{contract.pk}-{i}",
                    defaults={
                        "contract": contract,
                        "person": "Jonas Berg",
                        "role": "solution architect",
                        "work_date": last_month + timedelta(days=3 + i),
                        "hours": Decimal("7.5"),
                        "description": "Architecture review",
                        "line_ref": line.line_ref,
                    },
                )
            planted["L2"] = 1
        # L3: usage sent under a misspelt metric ("API-Calls" for "api_calls"): billing never matches it.
        contract, version, line = _pick(contracts, "usage", used, calendar=False, aggregation="sum")
        if contract:
            metric = line.metric.replace("_", "-").upper()
            for i in range(6):
                moment = datetime.combine(last_month + timedelta(days=2 + i * 4), time(10), tzinfo=zone)
                UsageEvent.objects.get_or_create(
                    transaction_id=f"demo-leak-l3-{contract.pk}-{i}",
                    defaults={"contract": contract, "metric": metric, "quantity": Decimal(400000), "timestamp": moment},
                )
            planted["L3"] = 1
        # L1: a milestone closed as "invoiced" in the project tool; no invoice was ever raised.
        milestone = (
            Milestone.objects.filter(contract__status="active", status=MilestoneStatus.PENDING)
            .exclude(contract_id__in=used)
            .order_by("contract__number", "pk")
            .first()
        )
        if milestone:
            milestone.status = MilestoneStatus.INVOICED
            milestone.delivered_at = timezone.now() - timedelta(days=6)
            milestone.delivered_source = "jira"
            milestone.save(update_fields=["status", "delivered_at", "delivered_source"])
            used.add(milestone.contract_id)
            planted["L1"] = 1
        # L4: a "temporary" 15 % discount agreed with no end date.
        target = next((c for c in contracts if c.pk not in used), None)
        if target:
            Discount.objects.create(
                kind="percentage",
                value=Decimal(15),
                scope="contract",
                customer=target.customer,
                contract=target,
                start_date=target.start_date,
                no_expiry_reason="Temporary goodwill after the Q1 outage",
                status="active",
                reason="Goodwill",
                approved_label="legacy system import",
            )
            used.add(target.pk)
            planted["L4"] = 1
        # L5: a contract whose end date is 12 days away, inside its 30-day notice period.
        target = next(
            (
                c
                for c in contracts
                if c.pk not in used and not c.auto_renew and c.end_date and c.end_date > today + timedelta(days=60)
            ),
            None,
        )
        if target:
            Contract.objects.filter(pk=target.pk).update(end_date=today + timedelta(days=12), notice_period_days=30)
            planted["L5"] = 1
    return planted
