"""Small builders over the contracts factories for billing tests."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, date, datetime, time
from decimal import Decimal

from billing.models import TimeEntry, UsageEvent

_seq = itertools.count(1)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def contract_with(
    *lines: dict,
    start=date(2026, 1, 15),
    end=date(2026, 12, 31),
    number: str | None = None,
    status: str = "active",
    auto_issue=None,
    issuing_entity=None,
    customer=None,
    **terms,
):
    """An active contract with version 1 from its start and the given price lines (factory kwargs)."""
    from contracts.tests.factories import ContractFactory, PriceLineFactory

    extra = {"issuing_entity": issuing_entity} if issuing_entity is not None else {}
    if customer is not None:
        extra["customer"] = customer
    contract = ContractFactory(
        start_date=start,
        end_date=end,
        status=status,
        auto_issue=auto_issue,
        **extra,
        number=number or unique("C"),
        **{f"version__{k}": v for k, v in terms.items()},
    )
    version = contract.versions.get()
    for position, spec in enumerate(lines, start=1):
        spec = dict(spec)
        spec.setdefault("line_ref", f"L{position}")
        PriceLineFactory(version=version, position=position, **spec)
    return contract


def amend(contract, *, effective_from: date, lines: list[dict] | None = None, copy: bool = True, **terms):
    """A new version from ``effective_from``: the previous lines (changed by ``lines`` with the same
    line_ref) plus new ones."""
    from contracts.models import ContractVersion, PriceLine, PriceTier, RateCardEntry

    previous = contract.versions.order_by("-effective_from").first()
    fields = {
        f: getattr(previous, f)
        for f in ("payment_terms_days", "po_number", "po_required", "billing_anchor", "currency")
    }
    fields.update(terms)
    version = ContractVersion.objects.create(
        contract=contract, version=previous.version + 1, effective_from=effective_from, **fields
    )
    changes = {spec["line_ref"]: spec for spec in (lines or [])}
    for line in previous.price_lines.all() if copy else []:
        tiers, rates = list(line.tiers.all()), list(line.rates.all())
        line.pk = None
        line.version = version
        for key, value in changes.pop(line.line_ref, {}).items():
            setattr(line, key, value)
        line.save()
        for tier in tiers:
            PriceTier.objects.create(
                price_line=line,
                position=tier.position,
                up_to=tier.up_to,
                unit_amount=tier.unit_amount,
                flat_amount=tier.flat_amount,
                rate=tier.rate,
            )
        for rate in rates:
            RateCardEntry.objects.create(price_line=line, role=rate.role, hourly_rate=rate.hourly_rate)
    for spec in changes.values():
        PriceLine.objects.create(version=version, **spec)
    return version


def at(day: date, hour: int = 12) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=UTC)


def usage(contract, metric: str, quantity, day: date, **properties) -> UsageEvent:
    return UsageEvent.objects.create(
        transaction_id=unique("tx"),
        contract=contract,
        metric=metric,
        quantity=Decimal(str(quantity)),
        timestamp=at(day),
        properties=properties,
    )


def hours(
    contract, amount, day: date, *, role: str = "engineer", line_ref: str = "", billable: bool = True
) -> TimeEntry:
    return TimeEntry.objects.create(
        external_id=unique("te"),
        contract=contract,
        person="Ada",
        role=role,
        work_date=day,
        hours=Decimal(str(amount)),
        billable=billable,
        line_ref=line_ref,
    )
