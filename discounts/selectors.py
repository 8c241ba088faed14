"""Read queries for discounts, credits and overrides: billing's rate lookup, lists, impact.

``rate_override`` / ``rate_overrides_lookup`` are what billing consults where it reads a contract
rate: inside an override's window the custom rate replaces it, outside it the contract rate
stands. The date that decides is the one billing prices by: a recurring or usage period's start
(the same rule as "the terms in force at the period's start"), a time entry's work date.

The list and impact queries load everything in a fixed number of queries, whatever the number of
exceptions (no per-row lookups).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from django.db.models import Prefetch, Q, Sum

from contracts.models import Contract, ContractVersion, PriceLine, RateCardEntry
from discounts import applicator
from discounts.impact import (
    ForecastLine,
    PeriodUplift,
    discount_uplift,
    next_month,
    override_uplift,
    recurring_forecast,
)
from discounts.models import (
    Credit,
    CreditStatus,
    Discount,
    DiscountApplication,
    ExceptionStatus,
    PriceOverride,
)
from revexos.money import format_money, quantize

ZERO = Decimal("0")
FORECAST_PERIODS = 3
LIVE = (ExceptionStatus.SCHEDULED, ExceptionStatus.ACTIVE)


# --------------------------------------------------------------------------- billing's rate lookup


def _override_q(*, contract_id: int, on: date) -> Q:
    return Q(contract_id=contract_id, start_date__lte=on, end_date__gte=on) & ~Q(status=ExceptionStatus.REVOKED)


def rate_override(*, contract_id: int, line_ref: str, role: str | None = None, on: date) -> Decimal | None:
    """The custom rate for a contract's price line (and rate-card role) on ``on``; None = the contract's rate."""
    row = (
        PriceOverride.objects.filter(_override_q(contract_id=contract_id, on=on), line_ref=line_ref, role=role or "")
        .order_by("-created_at", "-id")
        .values_list("rate", flat=True)
        .first()
    )
    return row


def rate_in_force(
    *, contract_rate: Decimal | None, contract_id: int, line_ref: str, role: str | None = None, on: date
) -> Decimal | None:
    """The rate billing uses on ``on``: a custom rate inside its window, else ``contract_rate``."""
    override = rate_override(contract_id=contract_id, line_ref=line_ref, role=role, on=on)
    return contract_rate if override is None else override


def rate_overrides_in(
    *, contract_id: int, line_ref: str, role: str | None = None, start: date, end: date
) -> list[Decimal]:
    """Custom rates in force on any day of ``[start, end]``: for checks of hourly lines priced per work date."""
    return list(
        PriceOverride.objects.filter(
            contract_id=contract_id, line_ref=line_ref, role=role or "", start_date__lte=end, end_date__gte=start
        )
        .exclude(status=ExceptionStatus.REVOKED)
        .values_list("rate", flat=True)
        .distinct()
    )


def rate_overrides_lookup(*, contract_id: int) -> Callable[..., Decimal | None]:
    """One query for a contract's overrides, then ``lookup(line_ref, role, on=day, default=rate)`` in memory.

    For billing loops that price many facts (time entries) of one contract.
    """
    rows = list(
        PriceOverride.objects.filter(contract_id=contract_id)
        .exclude(status=ExceptionStatus.REVOKED)
        .order_by("-created_at", "-id")
        .values_list("line_ref", "role", "start_date", "end_date", "rate")
    )

    def lookup(line_ref: str, role: str | None = None, *, on: date, default: Decimal | None = None) -> Decimal | None:
        for ref, row_role, start, end, rate in rows:
            if ref == line_ref and row_role == (role or "") and start <= on <= end:
                return rate
        return default

    return lookup


def _override_rows_for(contract_ids) -> dict[int, list[PriceOverride]]:
    result: dict[int, list[PriceOverride]] = defaultdict(list)
    for row in (
        PriceOverride.objects.filter(contract_id__in=list(contract_ids))
        .exclude(status=ExceptionStatus.REVOKED)
        .order_by("-created_at", "-id")
    ):
        result[row.contract_id].append(row)
    return result


# --------------------------------------------------------------------------- discounts covering an invoice
# Billing (billing/services/adjustments.py) applies them; these say which, and how far they ran.


def _line_dates(invoice, lines) -> tuple[date, date]:
    days = [invoice.billing_date]
    for line in lines:
        if line.period_start:
            days.append(line.period_start)
        if line.period_end:
            days.append(line.period_end)
    return min(days), max(days)


def discount_covers(discount: Discount, *, invoice, lines) -> bool:
    """The rule of ``discounts_for_invoice`` for a loaded row (a billing run loads a chunk's discounts once)."""
    first, last = _line_dates(invoice, lines)
    in_scope = discount.contract_id == invoice.contract_id or (
        discount.scope == "customer" and discount.customer_id == invoice.customer_id
    )
    return (
        discount.status != ExceptionStatus.REVOKED
        and in_scope
        and discount.start_date <= last
        and (discount.end_date is None or discount.end_date >= first)
        and (discount.kind == "percentage" or discount.currency == invoice.currency)
    )


def discounts_for_invoice(*, invoice, lines, lock: bool = False) -> list[Discount]:
    """Discounts whose scope covers the invoice and whose window touches its lines, oldest first
    (``discount_covers`` is the same rule in memory). ``invoice`` is any object with the invoice's
    ``contract_id``, ``customer_id``, ``currency`` and ``billing_date`` (a run's unsaved draft)."""
    first, last = _line_dates(invoice, lines)
    queryset = (
        Discount.objects.exclude(status=ExceptionStatus.REVOKED)
        .filter(
            Q(contract_id=invoice.contract_id) | Q(scope="customer", customer_id=invoice.customer_id),
            start_date__lte=last,
        )
        .filter(Q(end_date__isnull=True) | Q(end_date__gte=first))
        .filter(Q(kind="percentage") | Q(currency=invoice.currency))
        .order_by("created_at", "id")
    )
    if lock:
        # Serialises invoices of one customer sharing a max_cycles discount (two contracts at once).
        queryset = queryset.select_for_update(of=("self",))
    return list(queryset)


def cycles_used(*, discount_ids, exclude_invoice_id=None) -> dict[int, set[str]]:
    """The billing cycles (period starts) each discount has been applied to, by discount id."""
    rows = DiscountApplication.objects.filter(discount_id__in=list(discount_ids))
    if exclude_invoice_id is not None:
        rows = rows.exclude(invoice_id=exclude_invoice_id)
    result: dict[int, set[str]] = {}
    for discount_id, key in rows.values_list("discount_id", "cycle_key").distinct():
        result.setdefault(discount_id, set()).add(key)
    return result


def discount_terms(discount: Discount, used: set[str]) -> applicator.DiscountTerms:
    """A discount row as the pure applicator takes it, with the cycles it has left."""
    remaining = None if discount.max_cycles is None else max(discount.max_cycles - len(used), 0)
    return applicator.DiscountTerms(
        id=discount.pk,
        kind=discount.kind,
        value=discount.value,
        start=discount.start_date,
        end=discount.end_date,
        line_ref=discount.line_ref,
        contract_id=discount.contract_id,
        currency=discount.currency,
        cycles_remaining=remaining,
        cycle_keys_used=frozenset(used),
    )


# --------------------------------------------------------------------------- forecast loading


def _versions_by_contract(contract_ids) -> dict[int, list]:
    lines = PriceLine.objects.prefetch_related("tiers", "rates").order_by("position", "id")
    result: dict[int, list] = defaultdict(list)
    for version in (
        ContractVersion.objects.filter(contract_id__in=list(contract_ids))
        .prefetch_related(Prefetch("price_lines", queryset=lines))
        .order_by("contract_id", "effective_from")
    ):
        result[version.contract_id].append(version)
    return result


@dataclass
class ForecastBook:
    """Recurring forecast of a set of contracts, by contract."""

    today: date
    lines_by_contract: dict[int, list[ForecastLine]]
    contracts_by_customer: dict[int, list[int]]

    def lines_for(self, *, contract_id: int | None = None, customer_id: int | None = None) -> list[ForecastLine]:
        if contract_id is not None:
            return self.lines_by_contract.get(contract_id, [])
        return [
            line
            for cid in self.contracts_by_customer.get(customer_id, [])
            for line in self.lines_by_contract.get(cid, [])
        ]


def forecast_book(
    *, today: date, contract_ids=None, customer_ids=None, periods: int = FORECAST_PERIODS
) -> ForecastBook:
    contracts = Contract.objects.filter(status="active")
    condition = Q(pk__in=list(contract_ids or [])) | Q(customer_id__in=list(customer_ids or []))
    contracts = list(contracts.filter(condition))
    versions = _versions_by_contract(c.pk for c in contracts)
    overrides = _override_rows_for(c.pk for c in contracts)

    def override_for(contract_id, line_ref, role, on):
        for row in overrides.get(contract_id, []):
            if row.line_ref == line_ref and row.role == role and row.start_date <= on <= row.end_date:
                return row
        return None

    by_contract, by_customer = {}, defaultdict(list)
    for contract in contracts:
        by_contract[contract.pk] = recurring_forecast(
            contract=contract,
            versions=versions.get(contract.pk, []),
            after=today,
            periods=periods,
            override_for=override_for,
        )
        by_customer[contract.customer_id].append(contract.pk)
    return ForecastBook(today=today, lines_by_contract=by_contract, contracts_by_customer=by_customer)


# --------------------------------------------------------------------------- the list of exceptions


@dataclass
class ExceptionRow:
    kind: str  # discount | credit | override
    obj: object
    reference: str
    customer: object
    contract: object | None
    scope_label: str
    value_label: str
    currency: str
    start: date | None
    expires_on: date | None
    expiry_label: str
    status: str
    status_label: str
    given_up: Decimal | None = None  # revenue given up (discount, override) or credit used, to date
    next_month_uplift: Decimal | None = None
    uplift_note: str = ""
    ahead: list[PeriodUplift] = field(default_factory=list)

    @property
    def is_live(self) -> bool:
        return self.status in ("scheduled", "active")

    @property
    def ahead_total(self) -> Decimal | None:
        if not self.ahead:
            return None
        return sum((p.uplift for p in self.ahead), ZERO)


def _fmt_value(value: Decimal, currency: str) -> str:
    return f"{format_money(value, currency)} {currency}"


def _pct(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return f"{text} %"


def _discount_expiry(discount: Discount, used: set[str], lines: list[ForecastLine]) -> date | None:
    """The end date, or for a cycle-limited discount the end of the period its last cycle covers (forecast)."""
    if discount.max_cycles is None:
        return discount.end_date
    remaining = discount.max_cycles - len(used)
    if remaining <= 0:
        return discount.end_date
    starts = sorted(
        {
            (line.period_start, line.period_end)
            for line in lines
            if line.period_start >= discount.start_date
            and line.period_start.isoformat() not in used
            and (not discount.line_ref or line.line_ref == discount.line_ref)
        }
    )
    if len(starts) >= remaining:
        estimate = starts[remaining - 1][1]
        return min(estimate, discount.end_date) if discount.end_date else estimate
    return discount.end_date


def _next_month_of(ahead: list[PeriodUplift], today: date) -> Decimal | None:
    first, last = next_month(today)
    values = [p.uplift for p in ahead if first <= p.period_start <= last]
    if not values:
        return ZERO if ahead else None
    return sum(values, ZERO)


def exception_rows(
    *,
    today: date,
    kind: str = "all",
    status: str = "live",
    expiring_days: int | None = None,
    expiring_by: date | None = None,
    customer_id: int | None = None,
    with_impact: bool = True,
    override_given_up: Callable[[list[PriceOverride]], dict[int, Decimal]] | None = None,
) -> list[ExceptionRow]:
    """Every exception matching the filters with its impact columns, soonest expiry first.

    What a custom rate gave up to date is read from the invoices, which billing owns: the pages
    (``billing/views_exceptions.py``) pass ``billing.selectors_exceptions.override_given_up``;
    without it an override's ``given_up`` is None (unknown), never a made-up zero.
    """
    want = {"all": {"discount", "credit", "override"}}.get(kind, {kind})
    statuses = {
        "live": ["scheduled", "active"],
        "expired": ["expired", "used"],
        "revoked": ["revoked"],
        "all": None,
    }.get(status, ["scheduled", "active"])

    discounts = credits = overrides = []
    if "discount" in want:
        q = Discount.objects.select_related("customer", "contract", "approved_by").annotate(
            given=Sum("applications__amount")
        )
        if statuses:
            q = q.filter(status__in=statuses)
        if customer_id:
            q = q.filter(customer_id=customer_id)
        discounts = list(q)
    if "credit" in want:
        q = Credit.objects.select_related("customer", "contract", "approved_by")
        if statuses:
            q = q.filter(status__in=["active"] if status == "live" else statuses)
        if customer_id:
            q = q.filter(customer_id=customer_id)
        credits = list(q)
    if "override" in want:
        q = PriceOverride.objects.select_related("customer", "contract", "approved_by")
        if statuses:
            q = q.filter(status__in=statuses)
        if customer_id:
            q = q.filter(customer_id=customer_id)
        overrides = list(q)

    book = None
    if with_impact and (discounts or overrides):
        book = forecast_book(
            today=today,
            contract_ids={d.contract_id for d in discounts if d.contract_id} | {o.contract_id for o in overrides},
            customer_ids={d.customer_id for d in discounts if not d.contract_id},
            periods=max(FORECAST_PERIODS, max((d.max_cycles or 0) for d in discounts) if discounts else 0),
        )
    used = cycles_used(discount_ids=[d.pk for d in discounts])
    override_given = override_given_up(overrides) if with_impact and override_given_up else {}
    rows: list[ExceptionRow] = []
    for d in discounts:
        lines = book.lines_for(contract_id=d.contract_id, customer_id=d.customer_id) if book else []
        expires = _discount_expiry(d, used.get(d.pk, set()), lines)
        if d.max_cycles and d.end_date:
            label = f"{d.end_date:%-d %b %Y} or {d.max_cycles} cycles"
        elif d.max_cycles:
            label = f"after {d.max_cycles} cycle{'s' if d.max_cycles > 1 else ''}" + (
                f" (≈ {expires:%-d %b %Y})" if expires else ""
            )
        elif d.end_date:
            label = f"{d.end_date:%-d %b %Y}"
        else:
            label = "no expiry"
        ahead: list[PeriodUplift] = []
        if book is not None and d.status in LIVE:
            ahead = discount_uplift(terms=discount_terms(d, used.get(d.pk, set())), lines=lines)
            ahead = _by_period(ahead)[:FORECAST_PERIODS]
        scope = {
            "customer": "all contracts",
            "contract": d.contract.number if d.contract else "",
            "price_line": f"{d.contract.number if d.contract else ''} · line {d.line_ref}",
        }[d.scope]
        currency = d.currency or (lines[0].currency if lines else d.customer.currency)
        rows.append(
            ExceptionRow(
                kind="discount",
                obj=d,
                reference=d.reference,
                customer=d.customer,
                contract=d.contract,
                scope_label=scope,
                value_label=_pct(d.value) if d.kind == "percentage" else f"{_fmt_value(d.value, d.currency)} / cycle",
                currency=currency,
                start=d.start_date,
                expires_on=expires,
                expiry_label=label,
                status=d.status,
                status_label=d.get_status_display(),
                given_up=quantize(d.given or ZERO, currency),
                next_month_uplift=_next_month_of(ahead, today) if d.status in LIVE else None,
                ahead=ahead,
                uplift_note="" if ahead or d.status not in LIVE else "no recurring billing to forecast",
            )
        )
    for c in credits:
        rows.append(
            ExceptionRow(
                kind="credit",
                obj=c,
                reference=c.reference,
                customer=c.customer,
                contract=c.contract,
                scope_label=(c.contract.number if c.contract else "all contracts")
                + (f" · only {', '.join(c.pinned_invoices)}" if c.pinned_invoices else ""),
                value_label=f"{format_money(c.balance, c.currency)} of {_fmt_value(c.amount, c.currency)}",
                currency=c.currency,
                start=None,
                expires_on=c.expires_on,
                expiry_label=f"{c.expires_on:%-d %b %Y}" if c.expires_on else "no expiry",
                status=c.status,
                status_label=c.get_status_display(),
                given_up=quantize(c.amount - c.balance, c.currency),
                next_month_uplift=None,
                uplift_note=f"{_fmt_value(c.balance, c.currency)} lapses"
                if c.status == "active" and c.expires_on
                else "",
            )
        )
    for o in overrides:
        ahead = []
        note = ""
        if book is not None and o.status in LIVE:
            if o.role:
                per_hour = _card_rate(o, book)
                if per_hour is not None:
                    note = f"{'+' if per_hour - o.rate >= 0 else '−'}{_fmt_value(abs(per_hour - o.rate), o.currency)} per hour after expiry"
            else:
                ahead = _by_period(override_uplift(override=o, lines=book.lines_for(contract_id=o.contract_id)))[
                    :FORECAST_PERIODS
                ]
                if not ahead:
                    note = "per unit; usage is not forecast"
        rows.append(
            ExceptionRow(
                kind="override",
                obj=o,
                reference=o.reference,
                customer=o.customer,
                contract=o.contract,
                scope_label=f"{o.contract.number} · line {o.line_ref}" + (f" · {o.role}" if o.role else ""),
                value_label=f"{_fmt_value(o.rate, o.currency)}" + ("/h" if o.role else ""),
                currency=o.currency,
                start=o.start_date,
                expires_on=o.end_date,
                expiry_label=f"{o.end_date:%-d %b %Y}",
                status=o.status,
                status_label=o.get_status_display(),
                given_up=quantize(override_given.get(o.pk, ZERO), o.currency)
                if with_impact and override_given_up
                else None,
                next_month_uplift=_next_month_of(ahead, today) if ahead else None,
                uplift_note=note,
                ahead=ahead,
            )
        )

    if expiring_days is not None or expiring_by is not None:
        limit = expiring_by or today + timedelta(days=expiring_days)
        rows = [r for r in rows if r.is_live or (r.kind == "credit" and r.status == "active")]
        rows = [r for r in rows if r.expires_on is not None and today <= r.expires_on <= limit]
    rows.sort(key=lambda r: (r.expires_on is None, r.expires_on or date.max, r.reference))
    return rows


def _by_period(items: list[PeriodUplift]) -> list[PeriodUplift]:
    merged: dict[tuple[date, str], list[Decimal]] = {}
    for p in items:
        cur = merged.setdefault((p.period_start, p.currency), [ZERO, ZERO])
        cur[0] += p.discounted
        cur[1] += p.uplift
    return [PeriodUplift(k[0], k[1], v[0], v[1]) for k, v in sorted(merged.items())]


def _card_rate(override: PriceOverride, book: ForecastBook) -> Decimal | None:
    entry = (
        RateCardEntry.objects.filter(
            price_line__version__contract_id=override.contract_id,
            price_line__line_ref=override.line_ref,
            role=override.role,
            price_line__version__effective_from__lte=max(book.today, override.start_date),
        )
        .order_by("-price_line__version__effective_from")
        .values_list("hourly_rate", flat=True)
        .first()
    )
    return entry


def exception_totals(rows: list[ExceptionRow]) -> dict:
    uplift: dict[str, Decimal] = defaultdict(lambda: ZERO)
    given: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for r in rows:
        if r.next_month_uplift:
            uplift[r.currency] += r.next_month_uplift
        if r.given_up and r.kind != "credit":
            given[r.currency] += r.given_up
    return {"count": len(rows), "uplift": sorted(uplift.items()), "given_up": sorted(given.items())}


def exception_get(*, kind: str, pk: int):
    model = {"discount": Discount, "credit": Credit, "override": PriceOverride}[kind]
    return model.objects.select_related("customer", "contract", "approved_by", "created_by", "revoked_by").get(pk=pk)


def exception_events(obj):
    return list(obj.events.select_related("actor").order_by("-at", "-id"))


def credits_usable(*, customer_id: int, currency: str, on: date) -> Decimal:
    total = (
        Credit.objects.filter(customer_id=customer_id, currency=currency, status=CreditStatus.ACTIVE)
        .filter(Q(expires_on__isnull=True) | Q(expires_on__gte=on))
        .aggregate(s=Sum("balance"))["s"]
    )
    return total or ZERO
