"""Read queries for contracts. Views, the API and billing read contracts through here."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from types import SimpleNamespace

from django.db.models import Count, Prefetch, Q, QuerySet
from django.utils import timezone

from contracts.diffing import display
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
from contracts.valuation import ContractValue, contract_value
from revexos.parsing import clean_ref, parse_id


def _version_queryset() -> QuerySet[ContractVersion]:
    lines = PriceLine.objects.prefetch_related("tiers", "rates").order_by("position", "id")
    return ContractVersion.objects.prefetch_related(Prefetch("price_lines", queryset=lines))


def contract_terms_on(*, contract: Contract, on: date) -> ContractVersion | None:
    """The version in force on ``on``: the latest ``effective_from`` on or before it.

    Before the first version takes effect (e.g. billing the contract's first period), the first
    version governs.
    """
    versions = _version_queryset().filter(contract=contract)
    version = versions.filter(effective_from__lte=on).order_by("-effective_from").first()
    return version or versions.order_by("effective_from").first()


def contract_versions(*, contract: Contract) -> list[ContractVersion]:
    return list(_version_queryset().select_related("created_by").filter(contract=contract).order_by("effective_from"))


# ----------------------------------------------------------------------------- references


def customer_by_ref(ref: str) -> Customer | None:
    """A customer named by its ``external_id`` or, failing that, its id (None for a ref that names nothing)."""
    ref = clean_ref(ref)
    if ref is None:
        return None
    customer = Customer.objects.select_related("owner").filter(external_id=ref).first()
    if customer is None and (pk := parse_id(ref)) is not None:
        customer = Customer.objects.select_related("owner").filter(pk=pk).first()
    return customer


def contract_by_ref(ref: str) -> Contract | None:
    """A contract named by its ``number`` or, failing that, its id (None for a ref that names nothing)."""
    ref = clean_ref(ref)
    if ref is None:
        return None
    queryset = Contract.objects.select_related("customer", "issuing_entity", "owner")
    contract = queryset.filter(number=ref).first()
    if contract is None and (pk := parse_id(ref)) is not None:
        contract = queryset.filter(pk=pk).first()
    return contract


def issuing_entity_by_ref(ref: str) -> IssuingEntity | None:
    """An issuing entity named by its id, invoice prefix or legal name."""
    ref = clean_ref(ref)
    if ref is None:
        return None
    if (pk := parse_id(ref)) is not None:
        entity = IssuingEntity.objects.filter(pk=pk).first()
        if entity is not None:
            return entity
    return IssuingEntity.objects.filter(Q(invoice_prefix__iexact=ref) | Q(legal_name__iexact=ref)).first()


# ----------------------------------------------------------------------------- lists


def customer_list(*, q: str = "", currency: str = "", status: str = "", owner: str = "") -> QuerySet[Customer]:
    customers = Customer.objects.select_related("owner").annotate(
        contract_count=Count("contracts", distinct=True),
        active_contract_count=Count("contracts", filter=Q(contracts__status="active"), distinct=True),
    )
    if q:
        customers = customers.filter(
            Q(legal_name__icontains=q) | Q(external_id__icontains=q) | Q(tax_id__icontains=q) | Q(crm_id__icontains=q)
        )
    if currency:
        customers = customers.filter(currency=currency)
    if status == "active":
        customers = customers.filter(is_active=True)
    elif status == "inactive":
        customers = customers.filter(is_active=False)
    if owner == "none":
        customers = customers.filter(owner__isnull=True)
    elif (owner_id := parse_id(owner)) is not None:
        customers = customers.filter(owner_id=owner_id)
    return customers.order_by("legal_name", "pk")


def contract_list(
    *,
    q: str = "",
    status: str = "",
    customer: str = "",
    issuing_entity: str = "",
    ending_within_days: int | None = None,
    owner: str = "",
) -> QuerySet[Contract]:
    """Contracts with what a list row shows: customer, entity, owner and every version's lines."""
    versions = _version_queryset().order_by("effective_from")
    contracts = Contract.objects.select_related("customer", "issuing_entity", "owner").prefetch_related(
        Prefetch("versions", queryset=versions)
    )
    if q:
        contracts = contracts.filter(
            Q(number__icontains=q)
            | Q(title__icontains=q)
            | Q(customer__legal_name__icontains=q)
            | Q(customer__external_id__icontains=q)
        )
    if status:
        contracts = contracts.filter(status=status)
    if (customer_id := parse_id(customer)) is not None:
        contracts = contracts.filter(customer_id=customer_id)
    if (entity_id := parse_id(issuing_entity)) is not None:
        contracts = contracts.filter(issuing_entity_id=entity_id)
    if (owner_id := parse_id(owner)) is not None:
        contracts = contracts.filter(owner_id=owner_id)
    if ending_within_days is not None:
        today = timezone.localdate()
        contracts = contracts.filter(end_date__gte=today, end_date__lte=today + timedelta(days=ending_within_days))
    return contracts.order_by("-start_date", "number")


def contract_with_versions(*, pk: int) -> Contract:
    versions = _version_queryset().select_related("created_by").order_by("effective_from")
    return (
        Contract.objects.select_related("customer", "issuing_entity", "owner")
        .prefetch_related(Prefetch("versions", queryset=versions), "milestones")
        .get(pk=pk)
    )


def contract_value_of(contract: Contract, *, as_of: date | None = None) -> ContractValue:
    """Total contract value from the contract's prefetched versions (see contracts.valuation)."""
    versions = [
        SimpleNamespace(
            effective_from=v.effective_from,
            billing_anchor=v.billing_anchor,
            currency=v.currency,
            lines=list(v.price_lines.all()),
        )
        for v in contract.versions.all()
    ]
    return contract_value(
        start=contract.start_date, end=contract.end_date, versions=versions, as_of=as_of or timezone.localdate()
    )


def milestones_of(contract: Contract, versions: list[ContractVersion]) -> list[tuple[Milestone, PriceLine | None]]:
    """Each milestone with the price line that currently defines it (latest version holding its ref)."""
    lines: dict[str, PriceLine] = {}
    for version in versions:
        for line in version.price_lines.all():
            if line.kind == "milestone":
                lines[line.line_ref] = line
    return [(m, lines.get(m.line_ref)) for m in contract.milestones.all()]


# ----------------------------------------------------------------------------- history


@dataclass
class HistoryItem:
    subject: str
    action: str  # added | changed | removed
    changes: list[tuple[str, str, str]] = field(default_factory=list)  # (field, old, new)


@dataclass
class HistoryEvent:
    when: object
    who: str
    note: str
    items: list[HistoryItem] = field(default_factory=list)


_SKIP = {"id", "created_at", "updated_at", "position", "version_id", "contract_id", "price_line_id", "created_by_id"}
_LINE_SUMMARY = ("kind", "amount", "frequency", "charge_model", "metric", "cap", "expected_date", "bill_on")


def _tracked_fields(record) -> list:
    return [
        f for f in record.instance_type._meta.fields if f.attname not in _SKIP and not f.attname.startswith("history_")
    ]


def _value(record, f) -> str:
    value = getattr(record, f.attname)
    if f.choices and value not in (None, ""):
        value = dict(f.flatchoices).get(value, value)
    if isinstance(value, list):
        return ", ".join(value) or "—"
    return display(value if not hasattr(value, "isoformat") else value.isoformat())


def _diff(old, new) -> list[tuple[str, str, str]]:
    changes = []
    for f in _tracked_fields(new):
        before, after = _value(old, f), _value(new, f)
        if before != after:
            changes.append((str(f.verbose_name), before, after))
    return changes


def contract_history(*, contract: Contract, limit: int = 60) -> list[HistoryEvent]:
    """Who changed what and when on a contract, its versions, price lines, tiers, rates and milestones.

    Records saved together (one service call) are grouped into one event. A line in a new
    version is compared with the line of the same ``line_ref`` in the version before, so an
    amendment reads as "Retainer: amount 3100.00 → 3500.00", and lines carried over unchanged
    are counted instead of listed. A fixed number of queries, however long the history.
    """
    contract_records = list(Contract.history.filter(id=contract.pk).select_related("history_user"))
    version_records = list(ContractVersion.history.filter(contract_id=contract.pk).select_related("history_user"))
    version_numbers = {r.id: r.version for r in version_records}
    line_records = list(PriceLine.history.filter(version_id__in=list(version_numbers)).select_related("history_user"))
    line_ids = {r.id for r in line_records}
    tier_records = list(PriceTier.history.filter(price_line_id__in=list(line_ids)).select_related("history_user"))
    rate_records = list(RateCardEntry.history.filter(price_line_id__in=list(line_ids)).select_related("history_user"))
    milestone_records = list(Milestone.history.filter(contract_id=contract.pk).select_related("history_user"))

    line_ref_of = {r.id: (r.line_ref, r.description, version_numbers.get(r.version_id)) for r in line_records}
    # The state of each line's tiers and rates as last recorded, for comparing versions.
    extras: dict[int, dict[str, list]] = defaultdict(lambda: {"tiers": {}, "rates": {}})
    for r in sorted(tier_records, key=lambda r: r.history_date):
        bucket = extras[r.price_line_id]["tiers"]
        if r.history_type == "-":
            bucket.pop(r.id, None)
        else:
            bucket[r.id] = (
                r.position,
                f"{'≤' + display(r.up_to) if r.up_to is not None else 'above'}: "
                f"{display(r.unit_amount) if r.rate == 0 else display(r.rate) + ' %'}",
            )
    for r in sorted(rate_records, key=lambda r: r.history_date):
        bucket = extras[r.price_line_id]["rates"]
        if r.history_type == "-":
            bucket.pop(r.id, None)
        else:
            bucket[r.id] = (r.role, f"{r.role} {display(r.hourly_rate)}/h")

    def extras_text(line_id: int, kind: str) -> str:
        items = sorted(extras[line_id][kind].values())
        return "; ".join(text for _, text in items)

    latest_line: dict[tuple[int, str], object] = {}
    for r in sorted(line_records, key=lambda r: r.history_date):
        if r.history_type != "-":
            latest_line[(version_numbers.get(r.version_id), r.line_ref)] = r

    def label(record) -> str:
        model = record.instance_type
        if model is Contract:
            return f"Contract {record.number}"
        if model is ContractVersion:
            return f"Version {record.version} (from {record.effective_from.isoformat()})"
        if model is PriceLine:
            return f"{record.description} · {record.line_ref} · v{version_numbers.get(record.version_id, '?')}"
        if model in (PriceTier, RateCardEntry):
            ref, description, number = line_ref_of.get(record.price_line_id, ("?", "price line", "?"))
            what = f"tier {record.position}" if model is PriceTier else f"rate for {record.role}"
            return f"{description} ({ref}, v{number}): {what}"
        if model is Milestone:
            return f"Milestone {record.name}"
        return str(record)

    all_records = contract_records + version_records + line_records + tier_records + rate_records + milestone_records
    all_records.sort(key=lambda r: (r.history_date, r.history_id))
    previous_of: dict[tuple, object] = {}
    new_lines_in_event: set[int] = set()
    events: list[HistoryEvent] = []
    current: HistoryEvent | None = None
    carried = 0

    def close() -> None:
        nonlocal carried
        if current is not None and carried:
            current.items.append(
                HistoryItem(
                    subject=f"{carried} price line{'s' if carried != 1 else ''} carried over unchanged", action="kept"
                )
            )
        carried = 0

    for record in all_records:
        who = str(record.history_user) if record.history_user_id else "API or system"
        note = record.history_change_reason or ""
        if (
            current is None
            or who != current.who
            or note != current.note
            or (record.history_date - current.when).total_seconds() > 5
        ):
            close()
            current = HistoryEvent(when=record.history_date, who=who, note=note)
            events.append(current)
            new_lines_in_event = set()
        key = (record.instance_type, record.id)
        before = previous_of.get(key)
        previous_of[key] = record
        model = record.instance_type
        if record.history_type == "+":
            if model in (PriceTier, RateCardEntry) and record.price_line_id in new_lines_in_event:
                continue  # shown as part of its new line
            if model is PriceLine:
                new_lines_in_event.add(record.id)
                number = version_numbers.get(record.version_id)
                counterpart = latest_line.get((number - 1, record.line_ref)) if number and number > 1 else None
                if counterpart is not None:
                    changes = _diff(counterpart, record)
                    for kind in ("tiers", "rates"):
                        old_text, new_text = extras_text(counterpart.id, kind), extras_text(record.id, kind)
                        if old_text != new_text:
                            changes.append((kind, old_text or "—", new_text or "—"))
                    if changes:
                        current.items.append(HistoryItem(subject=label(record), action="changed", changes=changes))
                    else:
                        carried += 1
                    continue
                summary = [
                    (f.verbose_name, "", _value(record, f))
                    for f in _tracked_fields(record)
                    if f.attname in _LINE_SUMMARY and getattr(record, f.attname) not in (None, "")
                ]
                for kind in ("tiers", "rates"):
                    text = extras_text(record.id, kind)
                    if text:
                        summary.append((kind, "", text))
                current.items.append(HistoryItem(subject=label(record), action="added", changes=summary))
                continue
            current.items.append(HistoryItem(subject=label(record), action="added"))
        elif record.history_type == "-":
            if model in (PriceTier, RateCardEntry):
                continue
            current.items.append(HistoryItem(subject=label(record), action="removed"))
        else:
            changes = _diff(before, record) if before is not None else []
            if changes:
                current.items.append(HistoryItem(subject=label(record), action="changed", changes=changes))
    close()
    events = [e for e in events if e.items]
    events.reverse()
    return events[:limit]
