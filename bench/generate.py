"""Data generator: thousands of contracts across every price line kind, written set-based.

Every contract starts on the first day of the previous month, so the month-end run as of the
first of this month bills a closed month (arrears, usage, time) and an opening one (advance).
Rows go in with ``bulk_create`` (a handful of statements per table, not one per row).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, timedelta
from decimal import Decimal

D = Decimal

# (share of contracts, profile name). Each profile is a realistic mix of price lines.
PROFILES = [
    (0.25, "retainer"),  # monthly retainer in advance
    (0.10, "retainer_hours"),  # retainer in arrears with included hours and overage
    (0.10, "usage_per_unit"),
    (0.10, "usage_graduated"),
    (0.05, "usage_volume"),
    (0.05, "usage_package"),
    (0.05, "usage_percentage"),
    (0.10, "time_and_materials"),
    (0.10, "fixed_fee"),
    (0.05, "milestone"),
    (0.05, "everything"),  # one line of every kind
]
USAGE_PROFILES = {
    "usage_per_unit",
    "usage_graduated",
    "usage_volume",
    "usage_package",
    "usage_percentage",
    "everything",
}


@dataclass
class Generated:
    contract_ids: list[int] = field(default_factory=list)
    usage_contracts: list[tuple[str, str]] = field(default_factory=list)  # (contract number, metric)
    profile_counts: dict[str, int] = field(default_factory=dict)
    time_entries: int = 0


def month_bounds(today: date) -> tuple[date, date, date]:
    """(start of previous month, end of previous month, first of this month)."""
    first = today.replace(day=1)
    prev_end = first - timedelta(days=1)
    return prev_end.replace(day=1), prev_end, first


def _profile(rng: random.Random) -> str:
    x, acc = rng.random(), 0.0
    for share, name in PROFILES:
        acc += share
        if x < acc:
            return name
    return PROFILES[-1][1]


def contracts_generate(*, count: int, today: date, seed: int = 7) -> Generated:
    from billing.models import TimeEntry
    from contracts.models import (
        Contract,
        ContractVersion,
        Customer,
        IssuingEntity,
        Milestone,
        PriceLine,
        PriceTier,
        RateCardEntry,
    )

    rng = random.Random(seed)
    start, prev_end, _ = month_bounds(today)
    entity = IssuingEntity.objects.create(legal_name="Bench Consulting Ltd", invoice_prefix="BEN-", currency="USD")
    customers = Customer.objects.bulk_create(
        [
            Customer(
                external_id=f"bench-cust-{i}",
                legal_name=f"Bench Customer {i} Ltd",
                billing_emails=[f"ap{i}@example.com"],
            )
            for i in range(count)
        ],
        batch_size=2000,
    )
    contracts = Contract.objects.bulk_create(
        [
            Contract(
                customer=c,
                issuing_entity=entity,
                number=f"B-{i:06d}",
                title="Bench services",
                status="active",
                start_date=start,
                end_date=None,
            )
            for i, c in enumerate(customers)
        ],
        batch_size=2000,
    )
    versions = ContractVersion.objects.bulk_create(
        [
            ContractVersion(contract=c, version=1, effective_from=start, currency="USD", payment_terms_days=30)
            for c in contracts
        ],
        batch_size=2000,
    )
    out = Generated(contract_ids=[c.pk for c in contracts])
    lines: list[PriceLine] = []
    line_extras: list[tuple[int, str]] = []  # (index in lines, what to attach: tiers/rates)
    milestones: list[tuple[Contract, str]] = []
    time_rows: list[tuple[Contract, str, str]] = []  # (contract, role, line_ref)

    def add(version, **kw):
        lines.append(PriceLine(version=version, **kw))
        return len(lines) - 1

    for contract, version in zip(contracts, versions, strict=True):
        profile = _profile(rng)
        out.profile_counts[profile] = out.profile_counts.get(profile, 0) + 1
        amount = D(rng.choice(["1500.00", "3100.00", "4800.00", "9990.00"]))
        if profile in ("retainer", "everything"):
            add(
                version,
                line_ref="R",
                kind="recurring",
                description="Retainer",
                amount=amount,
                frequency="monthly",
                timing="advance",
            )
        if profile == "retainer_hours":
            add(
                version,
                line_ref="R",
                kind="recurring",
                description="Support retainer",
                amount=amount,
                frequency="monthly",
                timing="arrears",
                included_hours=D("20"),
                overage_rate=D("150.00"),
            )
            time_rows.append((contract, "consultant", "R"))
        metric = None
        if profile == "usage_per_unit":
            metric = "api_calls"
            add(
                version,
                line_ref="U",
                kind="usage",
                description="API calls",
                metric=metric,
                frequency="monthly",
                charge_model="per_unit",
                unit_amount=D("0.002"),
                aggregation="sum",
                minimum_commitment=D("50.00"),
            )
        if profile in ("usage_graduated", "everything"):
            metric = "api_calls"
            i = add(
                version,
                line_ref="U",
                kind="usage",
                description="API calls",
                metric=metric,
                frequency="monthly",
                charge_model="graduated",
                aggregation="sum",
                threshold_amount=D("100000.00"),
            )
            line_extras.append((i, "tiers"))
        if profile == "usage_volume":
            metric = "storage_gb"
            i = add(
                version,
                line_ref="U",
                kind="usage",
                description="Storage",
                metric=metric,
                frequency="monthly",
                charge_model="volume",
                aggregation="max",
            )
            line_extras.append((i, "tiers"))
        if profile == "usage_package":
            metric = "sms"
            add(
                version,
                line_ref="U",
                kind="usage",
                description="SMS",
                metric=metric,
                frequency="monthly",
                charge_model="package",
                package_size=D("1000"),
                amount=D("9.00"),
                free_units=D("500"),
                aggregation="sum",
            )
        if profile == "usage_percentage":
            metric = "payments"
            add(
                version,
                line_ref="U",
                kind="usage",
                description="Card payments",
                metric=metric,
                frequency="monthly",
                charge_model="percentage",
                rate=D("2.9"),
                fixed_amount=D("0.30"),
                aggregation="count",
            )
        if metric:
            out.usage_contracts.append((contract.number, metric))
        if profile in ("time_and_materials", "everything"):
            i = add(version, line_ref="TM", kind="time_and_materials", description="Engineering", cap=D("50000.00"))
            line_extras.append((i, "rates"))
            time_rows.append((contract, "engineer", "TM"))
        if profile in ("fixed_fee", "everything"):
            add(version, line_ref="F", kind="fixed_fee", description="Onboarding", amount=D("5000.00"), bill_on=start)
        if profile in ("milestone", "everything"):
            add(
                version,
                line_ref="M",
                kind="milestone",
                description="Go-live",
                amount=D("12000.00"),
                reference=f"P-{contract.pk}",
            )
            milestones.append((contract, "M"))

    created = PriceLine.objects.bulk_create(lines, batch_size=2000)
    tiers, rates = [], []
    for index, what in line_extras:
        line = created[index]
        if what == "tiers":
            tiers += [
                PriceTier(price_line=line, position=1, up_to=D("1000"), unit_amount=D("0.010")),
                PriceTier(price_line=line, position=2, up_to=D("10000"), unit_amount=D("0.008")),
                PriceTier(price_line=line, position=3, up_to=None, unit_amount=D("0.005")),
            ]
        else:
            rates += [
                RateCardEntry(price_line=line, role="engineer", hourly_rate=D("150.00")),
                RateCardEntry(price_line=line, role="designer", hourly_rate=D("120.00")),
            ]
    PriceTier.objects.bulk_create(tiers, batch_size=2000)
    RateCardEntry.objects.bulk_create(rates, batch_size=2000)
    Milestone.objects.bulk_create(
        [
            Milestone(
                contract=c,
                line_ref=ref,
                name="Go-live",
                reference=f"P-{c.pk}",
                status="delivered",
                delivered_at=_noon(prev_end),
                delivered_source="bench",
            )
            for c, ref in milestones
        ],
        batch_size=2000,
    )
    entries = []
    for contract, role, ref in time_rows:
        for day in range(1, 6):
            entries.append(
                TimeEntry(
                    external_id=f"bench-te-{contract.pk}-{day}",
                    contract=contract,
                    person="Bench Person",
                    role=role,
                    work_date=start + timedelta(days=day),
                    hours=D(rng.choice(["4", "6", "7.5", "8"])),
                    line_ref=ref,
                )
            )
    TimeEntry.objects.bulk_create(entries, batch_size=5000)
    out.time_entries = len(entries)
    return out


def _noon(day: date):
    from datetime import datetime, time

    return datetime.combine(day, time(12), tzinfo=UTC)


def usage_batches(
    *,
    usage_contracts: list[tuple[str, str]],
    events: int,
    batch_size: int,
    month_start: date,
    month_end: date,
    seed: int = 11,
) -> list[list[dict]]:
    """``events`` usage events as API batches, spread over the usage contracts and the closed month."""
    rng = random.Random(seed)
    days = (month_end - month_start).days + 1
    batches, batch = [], []
    for n in range(events):
        number, metric = usage_contracts[rng.randrange(len(usage_contracts))]
        day = month_start + timedelta(days=rng.randrange(days))
        event = {
            "transaction_id": f"bench-{n}",
            "contract": number,
            "metric": metric,
            "quantity": str(rng.randint(1, 500)),
            "timestamp": f"{day.isoformat()}T{rng.randrange(24):02d}:{rng.randrange(60):02d}:00Z",
            "properties": {"region": rng.choice(["eu", "us", "ap"])},
        }
        if metric == "payments":
            event["properties"]["amount"] = f"{rng.randint(100, 50000) / 100:.2f}"
        batch.append(event)
        if len(batch) == batch_size:
            batches.append(batch)
            batch = []
    if batch:
        batches.append(batch)
    return batches
