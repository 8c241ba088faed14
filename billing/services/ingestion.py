"""Ingestion of delivery facts: usage events, time entries, delivery events (DESIGN.md §2 event flow).

Every batch is validated whole before anything is written: one bad item rejects the batch with an
error per item and field (``events.3.quantity``) and stores nothing. A valid batch is written with
one set-based ``INSERT … SELECT FROM unnest(…) ON CONFLICT DO NOTHING RETURNING id`` (no ORM save
per row); facts already stored (same transaction id / external id) are accepted and ignored. The
insert and the acknowledgement share one transaction, and evaluation is enqueued on commit.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from billing.models import DeliveryEvent, DeliveryEventKind, ReviewTaskKind, TimeEntry, UsageEvent
from billing.services.context import tenant_zone
from billing.services.enqueue import task_enqueue_on_commit
from billing.services.reviews import review_task_raise
from revexos.lookups import AnyOf
from revexos.parsing import parse_date, parse_decimal, parse_id, ref_or_error
from revexos.schedule import version_on

MAX_BATCH = 1000
MAX_QUANTITY = Decimal("1000000000000")  # 10^12 per event: anything larger is a unit bug upstream
MAX_PLACES = 6
FUTURE_TOLERANCE = timedelta(days=1)
MAX_PROPERTIES_BYTES = 4096
BILLABLE_STATUSES = ("active", "expired", "terminated", "renewed")


@dataclass(frozen=True)
class IngestResult:
    received: int
    accepted: int
    duplicates: int


class _Errors:
    """Problems by field path, in the shape of the API's validation errors."""

    def __init__(self, prefix: str):
        self.prefix = prefix
        self.fields: dict[str, list[str]] = {}

    def add(self, index: int | None, name: str, message: str) -> None:
        path = f"{self.prefix}.{index}.{name}" if index is not None else name
        self.fields.setdefault(path, []).append(message)

    def raise_if_any(self) -> None:
        if self.fields:
            raise ValidationError(self.fields)


def _batch(items: Any, *, name: str, errors: _Errors) -> list:
    if not isinstance(items, list):
        errors.add(None, name, f'Send a JSON array of objects (or {{"{name}": [...]}}).')
        errors.raise_if_any()
    if not items:
        errors.add(None, name, "The batch is empty; send at least one item.")
    if len(items) > MAX_BATCH:
        errors.add(
            None,
            name,
            f"A batch holds at most {MAX_BATCH:,} items; this one has {len(items):,}. Split it into smaller batches.",
        )
    errors.raise_if_any()
    return items


def _string(
    item: dict, key: str, errors: _Errors, index: int, *, required: bool = True, max_length: int = 200
) -> str | None:
    value = item.get(key)
    if value is None or value == "":
        if required:
            errors.add(index, key, "This field is required.")
        return None
    if not isinstance(value, str):
        errors.add(index, key, f"Must be a string, not {type(value).__name__}.")
        return None
    if len(value) > max_length:
        errors.add(index, key, f"At most {max_length} characters.")
        return None
    if "\x00" in value:
        errors.add(index, key, "Text must not contain NUL (\\u0000) characters.")
        return None
    return value.strip()


def _reference(item: dict, key: str, errors: _Errors, index: int) -> str | None:
    """Contract/customer references: an id (number or string) or a number/external id."""
    value = item.get(key)
    if value is None or value == "":
        return None
    try:
        return ref_or_error(value, what=key)
    except ValueError as exc:
        errors.add(index, key, str(exc))
        return None


def _decimal(
    item: dict, key: str, errors: _Errors, index: int, *, low: Decimal, high: Decimal, low_inclusive: bool = True
) -> Decimal | None:
    value = item.get(key)
    if value is None or value == "":
        errors.add(index, key, "This field is required.")
        return None
    try:
        number = parse_decimal(value)
    except ValueError as exc:
        errors.add(index, key, str(exc))
        return None
    if number < low or (number == low and not low_inclusive):
        errors.add(index, key, f"Must be {'at least' if low_inclusive else 'greater than'} {low}; got {number}.")
        return None
    if number > high:
        errors.add(index, key, f"{number} is beyond the maximum of {high:,}; check the unit.")
        return None
    if -number.as_tuple().exponent > MAX_PLACES:
        errors.add(index, key, f"At most {MAX_PLACES} decimal places.")
        return None
    return number


def _moment(item: dict, key: str, errors: _Errors, index: int, *, now: datetime) -> datetime | None:
    value = item.get(key)
    if not isinstance(value, str) or not value:
        errors.add(index, key, "Required: an ISO 8601 date-time with a time zone, e.g. 2026-02-01T09:30:00Z.")
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        errors.add(index, key, f"{value!r} is not an ISO 8601 date-time, e.g. 2026-02-01T09:30:00Z.")
        return None
    if moment.tzinfo is None:
        errors.add(index, key, "Add a time zone offset (Z or +01:00); local times are ambiguous.")
        return None
    if moment > now + FUTURE_TOLERANCE:
        errors.add(index, key, f"{value} is more than a day in the future; send facts when they happen.")
        return None
    if moment.year < 2000:
        errors.add(index, key, f"{value} is implausibly old.")
        return None
    return moment


def _day(item: dict, key: str, errors: _Errors, index: int, *, today: date) -> date | None:
    value = item.get(key)
    if not isinstance(value, str) or not value:
        errors.add(index, key, "Required: an ISO 8601 date, e.g. 2026-02-01.")
        return None
    try:
        day = parse_date(value)
    except ValueError as exc:
        errors.add(index, key, str(exc))
        return None
    if day > today + FUTURE_TOLERANCE:
        errors.add(index, key, f"{value} is in the future; log time when it is worked.")
        return None
    return day


def _unknown_keys(item: dict, allowed: set[str], errors: _Errors, index: int) -> None:
    for key in sorted(set(item) - allowed):
        errors.add(index, key, f"Unknown field; allowed fields are {', '.join(sorted(allowed))}.")


class ContractRef(NamedTuple):
    """What validating a fact needs of its contract (a batch names up to a thousand of them)."""

    pk: int
    number: str
    status: str
    start_date: date
    end_date: date | None


def _properties_too_large(properties: dict) -> bool:
    """Whether the properties take more than ``MAX_PROPERTIES_BYTES`` as JSON.

    Nearly every event carries a few short flat values: those are bounded without encoding them
    (a character encodes to at most 12 bytes, an escaped surrogate pair; quotes, colon and separator
    add at most 8 per pair), and only a large or nested object is encoded to be measured."""
    bound = 2
    for key, value in properties.items():
        if isinstance(value, (dict, list)):
            break
        bound += 12 * (len(key) + len(str(value))) + 8
    else:
        if bound <= MAX_PROPERTIES_BYTES:
            return False
    return len(json.dumps(properties, default=str)) > MAX_PROPERTIES_BYTES


def _contracts_resolve(refs: set[str]) -> dict[str, ContractRef]:
    """Map each reference (number, or id) to its contract; numbers win over ids."""
    from contracts.models import Contract

    if not refs:
        return {}
    ids = [pk for pk in map(parse_id, refs) if pk is not None]
    found = [
        ContractRef(*row)
        for row in Contract.objects.filter(Q(AnyOf(F("number"), sorted(refs))) | Q(AnyOf(F("pk"), ids)))
        .order_by()
        .values_list("pk", "number", "status", "start_date", "end_date")
    ]
    by_number = {c.number: c for c in found}
    by_id = {str(c.pk): c for c in found}
    return {ref: by_number.get(ref) or by_id.get(ref) for ref in refs if (by_number.get(ref) or by_id.get(ref))}


def _versions_by_contract(contract_ids: set[int]) -> dict[int, list]:
    from billing.selectors import contract_versions_many

    return contract_versions_many(contract_ids=list(contract_ids))


def _enqueue_evaluation(contract_ids: set[int]) -> None:
    if contract_ids:
        task_enqueue_on_commit("billing.tasks.contracts_evaluate", contract_ids=sorted(contract_ids))


# --------------------------------------------------------------------------- usage events

USAGE_FIELDS = {"transaction_id", "contract", "customer", "metric", "quantity", "timestamp", "properties"}


def usage_events_ingest(*, events: Any) -> IngestResult:
    """Validate a batch of usage events whole, then store the new ones in one statement."""
    from contracts.models import Contract, PriceLine

    errors = _Errors("events")
    items = _batch(events, name="events", errors=errors)
    now = timezone.now()
    zone = tenant_zone()
    parsed: list[dict | None] = []
    contract_refs: set[str] = set()
    customer_refs: set[str] = set()
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            errors.add(i, "event", f"Each event must be a JSON object, not {type(item).__name__}.")
            parsed.append(None)
            continue
        _unknown_keys(item, USAGE_FIELDS, errors, i)
        row = {
            "transaction_id": _string(item, "transaction_id", errors, i),
            "metric": _string(item, "metric", errors, i, max_length=100),
            "quantity": _decimal(item, "quantity", errors, i, low=Decimal(0), high=MAX_QUANTITY),
            "timestamp": _moment(item, "timestamp", errors, i, now=now),
            "contract": _reference(item, "contract", errors, i),
            "customer": _reference(item, "customer", errors, i),
            "properties": item.get("properties") if item.get("properties") is not None else {},
        }
        if (
            row["contract"] is None
            and row["customer"] is None
            and not {f"events.{i}.contract", f"events.{i}.customer"} & set(errors.fields)
        ):
            errors.add(i, "contract", "Name the contract (id or number) or the customer (id or external_id).")
        if row["contract"] and row["customer"]:
            errors.add(i, "customer", "Name either the contract or the customer, not both.")
        if not isinstance(row["properties"], dict):
            errors.add(i, "properties", f"Must be a JSON object, not {type(row['properties']).__name__}.")
        elif _properties_too_large(row["properties"]):
            errors.add(i, "properties", f"At most {MAX_PROPERTIES_BYTES} bytes of properties per event.")
        if row["contract"]:
            contract_refs.add(row["contract"])
        if row["customer"]:
            customer_refs.add(row["customer"])
        parsed.append(row)

    contracts = _contracts_resolve(contract_refs)
    customer_contracts: dict[str, list] = {}
    if customer_refs:
        from contracts.models import Customer

        ids = [pk for pk in map(parse_id, customer_refs) if pk is not None]
        customers = list(Customer.objects.filter(Q(external_id__in=customer_refs) | Q(pk__in=ids)))
        by_external = {c.external_id: c for c in customers}
        by_id = {str(c.pk): c for c in customers}
        by_ref = {
            ref: by_external.get(ref) or by_id.get(ref)
            for ref in customer_refs
            if by_external.get(ref) or by_id.get(ref)
        }
        candidates = defaultdict(list)
        for contract in Contract.objects.filter(customer__in=customers, status="active"):
            candidates[contract.customer_id].append(contract)
        customer_contracts = {
            ref: candidates.get(by_ref[ref].pk, []) if ref in by_ref else None for ref in customer_refs
        }
    all_contracts = {c.pk for c in contracts.values()} | {
        c.pk for lst in customer_contracts.values() if lst for c in lst
    }
    usage_lines: dict[int, dict[str, set[str]]] = defaultdict(
        lambda: defaultdict(set)
    )  # contract -> metric -> charge models
    threshold_contracts: set[int] = set()
    for contract_id, metric, model, threshold in (
        PriceLine.objects.filter(AnyOf(F("version__contract_id"), sorted(all_contracts)), kind="usage")
        .order_by()
        .values_list("version__contract_id", "metric", "charge_model", "threshold_amount")
    ):
        usage_lines[contract_id][metric].add(model)
        if threshold:
            threshold_contracts.add(contract_id)

    rows = []
    seen: set[str] = set()
    for i, row in enumerate(parsed):
        if row is None or row["metric"] is None:
            continue
        contract = None
        if row["contract"]:
            contract = contracts.get(row["contract"])
            if contract is None:
                errors.add(i, "contract", f"No contract {row['contract']!r}: use its id or number.")
                continue
            if row["metric"] not in usage_lines.get(contract.pk, {}):
                metrics = sorted(usage_lines.get(contract.pk, {}))
                errors.add(
                    i,
                    "metric",
                    f"Contract {contract.number} has no usage line for metric {row['metric']!r}"
                    + (f"; its metrics are {', '.join(metrics)}." if metrics else "; it bills no usage."),
                )
                continue
        elif row["customer"]:
            options = customer_contracts.get(row["customer"])
            if options is None:
                errors.add(i, "customer", f"No customer {row['customer']!r}: use its id or external_id.")
                continue
            metered = [c for c in options if row["metric"] in usage_lines.get(c.pk, {})]
            if row["timestamp"] is not None and len(metered) > 1:
                day = row["timestamp"].astimezone(zone).date()
                metered = [c for c in metered if c.start_date <= day and (c.end_date is None or day <= c.end_date)]
            if not metered:
                errors.add(
                    i, "metric", f"Customer {row['customer']!r} has no active contract metering {row['metric']!r}."
                )
                continue
            if len(metered) > 1:
                errors.add(
                    i,
                    "customer",
                    f"Customer {row['customer']!r} has several active contracts metering {row['metric']!r} "
                    f"({', '.join(c.number for c in metered)}); name the contract instead.",
                )
                continue
            contract = metered[0]
        if contract is None:
            continue
        if contract.status not in BILLABLE_STATUSES:
            errors.add(
                i, "contract", f"Contract {contract.number} is {contract.status}; activate it before sending usage."
            )
            continue
        if row["timestamp"] is not None:
            day = row["timestamp"].astimezone(zone).date()
            if day < contract.start_date or (contract.end_date and day > contract.end_date):
                errors.add(
                    i,
                    "timestamp",
                    f"{day} is outside contract {contract.number} "
                    f"({contract.start_date} – {contract.end_date or 'open-ended'}).",
                )
                continue
        models_ = usage_lines[contract.pk][row["metric"]]
        if models_ & {"percentage", "graduated_percentage"} and isinstance(row["properties"], dict):
            amount = row["properties"].get("amount")
            try:
                ok = amount is not None and not isinstance(amount, bool) and Decimal(str(amount)) >= 0
            except InvalidOperation:
                ok = False
            if not ok:
                errors.add(
                    i,
                    "properties.amount",
                    f"Metric {row['metric']!r} is charged as a percentage: give each event a "
                    "non-negative numeric properties.amount.",
                )
                continue
        if any(v is None for k, v in row.items() if k in ("transaction_id", "quantity", "timestamp")):
            continue
        if row["transaction_id"] in seen:
            continue  # a duplicate inside the batch: the first one wins, like a redelivery
        seen.add(row["transaction_id"])
        rows.append(
            {
                "t": row["transaction_id"],
                "c": contract.pk,
                "m": row["metric"],
                "q": str(row["quantity"]),
                "ts": row["timestamp"].isoformat(),
                "p": row["properties"],
            }
        )
    errors.raise_if_any()

    # The batch travels as one JSON document (encoded by the standard library's C encoder) rather
    # than as six arrays that the driver would adapt value by value; amounts and moments as text.
    table = UsageEvent._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        if rows:
            cursor.execute(
                f"""
                INSERT INTO {table} (transaction_id, contract_id, metric, quantity, timestamp, properties, received_at)
                SELECT t, c, m, q, ts, p, now()
                FROM jsonb_to_recordset(%s::jsonb) AS u(t text, c bigint, m text, q numeric, ts timestamptz, p jsonb)
                ON CONFLICT (transaction_id) DO NOTHING
                RETURNING contract_id
                """,
                [json.dumps(rows, default=str)],
            )
        inserted = [r[0] for r in cursor.fetchall()] if rows else []
        _enqueue_evaluation(set(inserted) & threshold_contracts)
    return IngestResult(received=len(items), accepted=len(inserted), duplicates=len(items) - len(inserted))


# --------------------------------------------------------------------------- time entries

TIME_FIELDS = {"external_id", "contract", "person", "role", "date", "hours", "billable", "description", "price_line"}


def _time_line_ref(versions: list, *, work_date: date, role: str, explicit: str | None) -> str:
    """The price line the hours count against, from the terms in force on the work date."""
    version = version_on(versions, work_date)
    lines = list(version.price_lines.all())
    if explicit:
        return explicit
    for line in lines:
        if line.kind == "time_and_materials" and any(r.role == role for r in line.rates.all()):
            return line.line_ref
    for line in lines:
        if line.kind == "recurring" and line.included_hours is not None:
            return line.line_ref
    for line in lines:
        if line.kind == "fixed_fee" and line.included_hours:
            return line.line_ref
    return ""


def time_entries_ingest(*, entries: Any) -> IngestResult:
    """Validate a batch of time entries whole, then store the new ones (idempotent by external_id)."""
    errors = _Errors("entries")
    items = _batch(entries, name="entries", errors=errors)
    today = timezone.now().astimezone(tenant_zone()).date()
    parsed: list[dict | None] = []
    refs: set[str] = set()
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            errors.add(i, "entry", f"Each time entry must be a JSON object, not {type(item).__name__}.")
            parsed.append(None)
            continue
        _unknown_keys(item, TIME_FIELDS, errors, i)
        billable = item.get("billable", True)
        if not isinstance(billable, bool):
            errors.add(i, "billable", "Must be true or false.")
        row = {
            "external_id": _string(item, "external_id", errors, i),
            "contract": _reference(item, "contract", errors, i),
            "person": _string(item, "person", errors, i),
            "role": _string(item, "role", errors, i, max_length=100),
            "date": _day(item, "date", errors, i, today=today),
            "hours": _decimal(item, "hours", errors, i, low=Decimal(0), high=Decimal(24), low_inclusive=False),
            "billable": billable is True,
            "description": _string(item, "description", errors, i, required=False, max_length=500) or "",
            "price_line": _string(item, "price_line", errors, i, required=False, max_length=40),
        }
        if row["contract"] is None:
            errors.add(i, "contract", "Name the contract (id or number).")
        else:
            refs.add(row["contract"])
        parsed.append(row)
    contracts = _contracts_resolve(refs)
    versions = _versions_by_contract({c.pk for c in contracts.values()})
    rows = []
    seen: set[str] = set()
    for i, row in enumerate(parsed):
        if row is None or row["contract"] is None:
            continue
        contract = contracts.get(row["contract"])
        if contract is None:
            errors.add(i, "contract", f"No contract {row['contract']!r}: use its id or number.")
            continue
        if contract.status not in BILLABLE_STATUSES:
            errors.add(
                i, "contract", f"Contract {contract.number} is {contract.status}; activate it before logging time."
            )
            continue
        if row["date"] is not None and (
            row["date"] < contract.start_date or (contract.end_date and row["date"] > contract.end_date)
        ):
            errors.add(
                i,
                "date",
                f"{row['date']} is outside contract {contract.number} ({contract.start_date} – {contract.end_date or 'open-ended'}).",
            )
            continue
        if not versions.get(contract.pk):
            errors.add(i, "contract", f"Contract {contract.number} has no terms yet.")
            continue
        if row["price_line"]:
            known = {
                line.line_ref
                for v in versions[contract.pk]
                for line in v.price_lines.all()
                if line.kind in ("time_and_materials", "recurring", "fixed_fee")
            }
            by_id = {str(line.pk): line.line_ref for v in versions[contract.pk] for line in v.price_lines.all()}
            ref = row["price_line"] if row["price_line"] in known else by_id.get(row["price_line"])
            if ref not in known:
                errors.add(
                    i, "price_line", f"Contract {contract.number} has no time-based price line {row['price_line']!r}."
                )
                continue
            row["price_line"] = ref
        if any(row[k] is None for k in ("external_id", "person", "role", "date", "hours")):
            continue
        if row["external_id"] in seen:
            continue
        seen.add(row["external_id"])
        line_ref = _time_line_ref(
            versions[contract.pk], work_date=row["date"], role=row["role"], explicit=row["price_line"]
        )
        rows.append(
            (
                row["external_id"],
                contract.pk,
                row["person"],
                row["role"],
                row["date"],
                row["hours"],
                row["billable"],
                row["description"],
                line_ref,
            )
        )
    errors.raise_if_any()

    table = TimeEntry._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        if rows:
            cursor.execute(
                f"""
                INSERT INTO {table} (external_id, contract_id, person, role, work_date, hours, billable, description, line_ref, received_at)
                SELECT e, c, p, r, d, h, b, ds, lr, now()
                FROM unnest(%s::text[], %s::bigint[], %s::text[], %s::text[], %s::date[], %s::numeric[], %s::boolean[], %s::text[], %s::text[])
                     AS u(e, c, p, r, d, h, b, ds, lr)
                ON CONFLICT (external_id) DO NOTHING
                RETURNING contract_id
                """,
                [list(col) for col in zip(*rows, strict=False)],
            )
        inserted = [r[0] for r in cursor.fetchall()] if rows else []
        _enqueue_evaluation(set(inserted))
    return IngestResult(received=len(items), accepted=len(inserted), duplicates=len(items) - len(inserted))


# --------------------------------------------------------------------------- delivery events

DELIVERY_FIELDS = {
    "kind",
    "contract",
    "milestone_ref",
    "occurred_at",
    "external_id",
    "source",
    "description",
    "details",
}


@dataclass(frozen=True)
class DeliveryAccepted:
    event_id: int
    duplicate: bool


def delivery_event_ingest(*, event: Any, source: str = "api") -> DeliveryAccepted:
    """Store one delivery event in the inbox (idempotent by source + external_id); process on commit."""
    errors = _Errors("event")
    if not isinstance(event, dict):
        errors.add(None, "body", "Send one JSON object: {kind, contract, milestone_ref, occurred_at, external_id}.")
        errors.raise_if_any()
    for key in sorted(set(event) - DELIVERY_FIELDS):
        errors.add(None, key, f"Unknown field; allowed fields are {', '.join(sorted(DELIVERY_FIELDS))}.")
    kind = event.get("kind")
    if kind not in DeliveryEventKind.values:
        errors.add(None, "kind", f"Must be one of {', '.join(DeliveryEventKind.values)}.")
    external_id = event.get("external_id")
    if not isinstance(external_id, str) or not external_id.strip() or len(external_id) > 200:
        errors.add(None, "external_id", "Required: the sender's id of this event (a string of at most 200 characters).")
    source = event.get("source") or source
    if not isinstance(source, str) or len(source) > 50:
        errors.add(None, "source", "Must be a short string naming the sending system, e.g. jira.")
    occurred_at = timezone.now()
    if "occurred_at" in event:
        occurred_at = _moment(event, "occurred_at", errors, None, now=occurred_at)
    contract_ref = _reference(event, "contract", errors, None)
    contract = None
    if contract_ref is None:
        errors.add(None, "contract", "Name the contract (id or number).")
    else:
        contract = _contracts_resolve({contract_ref}).get(contract_ref)
        if contract is None:
            errors.add(None, "contract", f"No contract {contract_ref!r}: use its id or number.")
    milestone_ref = event.get("milestone_ref")
    if kind == DeliveryEventKind.MILESTONE_COMPLETED and (
        not isinstance(milestone_ref, str) or not milestone_ref.strip()
    ):
        errors.add(None, "milestone_ref", "Required for milestone_completed: the milestone's reference (e.g. PROJ-12).")
    errors.raise_if_any()

    payload = {k: v for k, v in event.items() if k not in ("kind", "contract", "occurred_at", "external_id", "source")}
    table = DeliveryEvent._meta.db_table
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                INSERT INTO {table} (source, kind, external_id, contract_id, payload, occurred_at, received_at, attempts, error)
                VALUES (%s, %s, %s, %s, %s::jsonb, %s, now(), 0, '')
                ON CONFLICT (source, external_id) DO NOTHING
                RETURNING id
                """,
                [source, kind, external_id.strip(), contract.pk, json.dumps(payload, default=str), occurred_at],
            )
            row = cursor.fetchone()
        if row is None:
            existing = DeliveryEvent.objects.get(source=source, external_id=external_id.strip())
            return DeliveryAccepted(event_id=existing.pk, duplicate=True)
        task_enqueue_on_commit("billing.tasks.delivery_event_process", event_id=row[0])
    return DeliveryAccepted(event_id=row[0], duplicate=False)


def milestone_deliver(*, milestone_id: int, source: str = "ui", delivered_at: datetime | None = None) -> Any:
    """Mark a milestone delivered (idempotent) and enqueue billing of its contract on commit."""
    from contracts.models import Milestone, MilestoneStatus

    with transaction.atomic():
        milestone = Milestone.objects.select_for_update().get(pk=milestone_id)
        if milestone.status == MilestoneStatus.PENDING:
            milestone.status = MilestoneStatus.DELIVERED
            milestone.delivered_at = delivered_at or timezone.now()
            milestone.delivered_source = source[:50]
            milestone.save(update_fields=["status", "delivered_at", "delivered_source"])
            _enqueue_evaluation({milestone.contract_id})
        elif milestone.status == MilestoneStatus.CANCELLED:
            raise ValidationError(
                {"milestone": [f"Milestone “{milestone.name}” was cancelled; it cannot be delivered."]}
            )
    return milestone


def _milestone_for_ref(contract, ref: str):
    """The milestone a project tool names: by reference, else by line_ref; created from its price line
    when the contract has one but no milestone row yet."""
    from contracts.models import Milestone, PriceLine

    found = (
        Milestone.objects.filter(contract=contract)
        .filter(Q(reference=ref) | Q(line_ref=ref))
        .order_by("-reference")
        .first()
    )
    if found is not None:
        return found
    line = (
        PriceLine.objects.filter(version__contract=contract, kind="milestone")
        .filter(Q(reference=ref) | Q(line_ref=ref))
        .order_by("-version__effective_from")
        .first()
    )
    if line is None:
        return None
    milestone, _ = Milestone.objects.get_or_create(
        contract=contract,
        line_ref=line.line_ref,
        defaults={"name": line.description, "reference": line.reference, "expected_date": line.expected_date},
    )
    return milestone


def delivery_event_process(*, event_id: int) -> bool:
    """Handle one inbox row once: milestone delivered, or a review task for a scope change.

    Safe to run twice or concurrently: the row is locked and ``processed_at`` checked first.
    Returns True when this call processed it.
    """
    with transaction.atomic():
        event = (
            # Only the event row: locking the joined contract too would make events of one contract
            # skip each other (SKIP LOCKED) and wait for the sweep.
            DeliveryEvent.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("contract")
            .filter(pk=event_id, processed_at__isnull=True)
            .first()
        )
        if event is None:
            return False
        contract = event.contract
        event.attempts += 1
        if event.kind == DeliveryEventKind.MILESTONE_COMPLETED:
            ref = str(event.payload.get("milestone_ref", "")).strip()
            milestone = _milestone_for_ref(contract, ref)
            if milestone is None:
                review_task_raise(
                    kind=ReviewTaskKind.UNKNOWN_MILESTONE,
                    dedupe_key=f"unknown-milestone:{event.pk}",
                    title=f"{contract.number}: {event.source} reported milestone {ref!r} complete, but the contract has no such milestone",
                    detail="Add the milestone to the contract (an amendment) or tell the sender the right reference.",
                    contract_id=contract.pk,
                )
            else:
                milestone_deliver(milestone_id=milestone.pk, source=event.source, delivered_at=event.occurred_at)
        elif event.kind == DeliveryEventKind.SCOPE_CHANGED:
            summary = event.payload.get("description") or event.payload.get("details") or "no description"
            review_task_raise(
                kind=ReviewTaskKind.SCOPE_CHANGE,
                dedupe_key=f"scope:{event.pk}",
                title=f"{contract.number}: scope changed ({event.source})",
                detail=f"{summary}\n\nDecide whether the contract needs an amendment or a change order.",
                contract_id=contract.pk,
            )
        event.processed_at = timezone.now()
        event.error = ""
        event.save(update_fields=["attempts", "processed_at", "error"])
    return True


def delivery_events_process_pending(*, limit: int = 1000, max_attempts: int = 5) -> int:
    """The sweep: process inbox rows stored but never processed (broker down, worker killed)."""
    ids = list(
        DeliveryEvent.objects.filter(processed_at__isnull=True, attempts__lt=max_attempts)
        .order_by("received_at", "id")
        .values_list("id", flat=True)[:limit]
    )
    done = 0
    for event_id in ids:
        try:
            done += delivery_event_process(event_id=event_id)
        except Exception as exc:  # one bad row must not stop the sweep; it is retried up to max_attempts
            DeliveryEvent.objects.filter(pk=event_id).update(attempts=F("attempts") + 1, error=str(exc)[:2000])
    return done
