"""Pure pricing for RevExOS billing: dataclasses in, Decimal out.

Why pure: every charge model, proration and split rule lives here with no ORM and no
I/O, so a billing rule is found in one place and tested exhaustively without a database
(STYLE.md). Services fetch the facts, call these functions and store the results.

Conventions
- Amounts, rates and quantities are ``Decimal`` (``int`` and ``str`` are accepted,
  ``float`` raises ``TypeError``). Quantities may be fractional (hours).
- Every function returning money takes ``currency`` and rounds once, at the end of the
  line, through :func:`revexos.money.quantize` (half-up to the currency's minor unit).
  Tier steps and per-transaction fees are summed exactly and never rounded on their own.
- Negative quantities, amounts and rates raise ``ValueError``: prices are never
  negative; credits and discounts are applied later, elsewhere.
- Periods are inclusive ``[start, end]`` of ``datetime.date``.
- Rates (``rate``) are percentages: ``Decimal("2.9")`` means 2.9 %.
"""

from __future__ import annotations

import calendar
import functools
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from revexos.money import allocate, quantize, to_decimal

__all__ = [
    "AGGREGATIONS",
    "ANCHORS",
    "CHARGE_MODELS",
    "FREQUENCIES",
    "Period",
    "TMCharge",
    "TMLine",
    "Tier",
    "TimeLine",
    "UsageCharge",
    "UsageSpec",
    "add_months",
    "aggregate",
    "apply_minimum_commitment",
    "billing_periods",
    "full_period_for",
    "price_graduated",
    "price_graduated_percentage",
    "price_overage_hours",
    "price_package",
    "price_per_unit",
    "price_percentage",
    "price_recurring",
    "price_time_and_materials",
    "price_usage",
    "price_volume",
    "prorate",
    "split_over_periods",
    "validate_tiers",
]

CHARGE_MODELS: tuple[str, ...] = (
    "per_unit",
    "graduated",
    "volume",
    "package",
    "percentage",
    "graduated_percentage",
)
AGGREGATIONS: tuple[str, ...] = ("sum", "count", "max", "unique_count")
FREQUENCIES: dict[str, int] = {"monthly": 1, "quarterly": 3, "annual": 12}  # months per period
ANCHORS: tuple[str, ...] = ("calendar", "anniversary")

ZERO = Decimal(0)
HUNDRED = Decimal(100)


def _non_negative(value: Decimal | int | str, name: str) -> Decimal:
    number = to_decimal(value, name)
    if number < 0:
        raise ValueError(f"{name} must not be negative, got {number}.")
    return number


def _optional_non_negative(value: Decimal | int | str | None, name: str) -> Decimal | None:
    return None if value is None else _non_negative(value, name)


def _percent_of(amount: Decimal, rate: Decimal) -> Decimal:
    return amount * rate / HUNDRED


# --------------------------------------------------------------------------- tiers


@dataclass(frozen=True, slots=True)
class Tier:
    """One price tier covering ``(previous up_to, up_to]``; ``up_to=None`` is unbounded.

    ``unit_amount`` prices units (graduated, volume), ``rate`` is a percentage of the
    amount (graduated_percentage), ``flat_amount`` is charged once when the tier is
    entered. Negative values are kept here and reported by :func:`validate_tiers`.
    """

    up_to: Decimal | None
    unit_amount: Decimal = ZERO
    flat_amount: Decimal = ZERO
    rate: Decimal = ZERO

    def __post_init__(self) -> None:
        if self.up_to is not None:
            object.__setattr__(self, "up_to", to_decimal(self.up_to, "up_to"))
        for name in ("unit_amount", "flat_amount", "rate"):
            object.__setattr__(self, name, to_decimal(getattr(self, name), name))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Tier:
        """Build a tier from its API/JSON form (DESIGN.md §5): strings, ``up_to`` null."""
        up_to = data.get("up_to")
        return cls(
            up_to=None if up_to in (None, "") else up_to,
            unit_amount=data.get("unit_amount") or ZERO,
            flat_amount=data.get("flat_amount") or ZERO,
            rate=data.get("rate") or ZERO,
        )


def validate_tiers(tiers: Sequence[Tier]) -> list[str]:
    """Return human-readable problems with ``tiers``; an empty list means they are usable.

    Tiers are contiguous: tier n covers (up_to[n-1], up_to[n]], the first starts at 0,
    and the last must be unbounded (``up_to`` null) so every quantity has a price.
    """
    if not tiers:
        return ["At least one tier is required; add one with no upper bound (up_to null)."]
    problems: list[str] = []
    previous: Decimal | None = None
    last_index = len(tiers) - 1
    for index, tier in enumerate(tiers):
        label = f"Tier {index + 1}"
        if tier.up_to is None:
            if index != last_index:
                problems.append(f"{label}: only the last tier may have no upper bound (up_to null).")
        else:
            if tier.up_to <= 0:
                problems.append(f"{label}: up_to must be greater than 0, got {tier.up_to}.")
            elif previous is not None and tier.up_to <= previous:
                problems.append(
                    f"{label}: up_to {tier.up_to} must be greater than the previous tier's up_to {previous}."
                )
            previous = tier.up_to if previous is None else max(previous, tier.up_to)
        for name in ("unit_amount", "flat_amount", "rate"):
            if getattr(tier, name) < 0:
                problems.append(f"{label}: {name} must not be negative, got {getattr(tier, name)}.")
    if tiers[last_index].up_to is not None:
        problems.append("The last tier must have no upper bound (up_to null) so every quantity is priced.")
    return problems


def _checked_tiers(tiers: Sequence[Tier]) -> Sequence[Tier]:
    problems = validate_tiers(tiers)
    if problems:
        raise ValueError("Invalid tiers: " + " ".join(problems))
    return tiers


def _graduated_total(
    quantity: Decimal, tiers: Sequence[Tier], price_of_slice: Callable[[Decimal, Tier], Decimal]
) -> Decimal:
    """Exact (unrounded) sum over the tiers that ``quantity`` enters.

    A tier is entered when quantity > the previous tier's up_to (0 for the first), so
    quantity 0 enters nothing and charges no flat amount.
    """
    total = ZERO
    lower = ZERO
    for tier in tiers:
        if quantity <= lower:
            break
        upper = quantity if tier.up_to is None else min(quantity, tier.up_to)
        total += price_of_slice(upper - lower, tier) + tier.flat_amount
        if tier.up_to is None:
            break
        lower = tier.up_to
    return total


# --------------------------------------------------------------------------- charge models


def price_per_unit(*, quantity: Decimal | int | str, unit_amount: Decimal | int | str, currency: str) -> Decimal:
    """quantity × unit_amount."""
    q = _non_negative(quantity, "quantity")
    return quantize(q * _non_negative(unit_amount, "unit_amount"), currency)


def price_graduated(*, quantity: Decimal | int | str, tiers: Sequence[Tier], currency: str) -> Decimal:
    """Each tier's units at its unit_amount, plus the flat_amount of every entered tier.

    Tiers 0–100 @1.00, 101–500 @0.80, >500 @0.50 and 650 units:
    100×1.00 + 400×0.80 + 150×0.50 = 495.00.
    """
    q = _non_negative(quantity, "quantity")
    total = _graduated_total(q, _checked_tiers(tiers), lambda units, tier: units * tier.unit_amount)
    return quantize(total, currency)


def price_volume(*, quantity: Decimal | int | str, tiers: Sequence[Tier], currency: str) -> Decimal:
    """Every unit at the tier the total falls in, plus that tier's flat_amount.

    Same tiers as :func:`price_graduated`, 650 units: 650×0.50 = 325.00. Quantity 0
    falls in no tier and costs nothing.
    """
    q = _non_negative(quantity, "quantity")
    _checked_tiers(tiers)
    if q == 0:
        return quantize(ZERO, currency)
    for tier in tiers:
        if tier.up_to is None or q <= tier.up_to:
            return quantize(q * tier.unit_amount + tier.flat_amount, currency)
    raise AssertionError("validated tiers always end unbounded")  # pragma: no cover


def price_package(
    *,
    quantity: Decimal | int | str,
    package_size: Decimal | int | str,
    amount: Decimal | int | str,
    free_units: Decimal | int | str = ZERO,
    currency: str,
) -> Decimal:
    """``amount`` per started package of ``package_size`` units, after ``free_units``.

    250 units, packages of 100 at 10.00 -> 3 packages = 30.00.
    """
    q = _non_negative(quantity, "quantity")
    size = _non_negative(package_size, "package_size")
    if size == 0:
        raise ValueError("package_size must be greater than 0.")
    price = _non_negative(amount, "amount")
    billable = max(ZERO, q - _non_negative(free_units, "free_units"))
    # divmod is exact, unlike a division rounded to the context precision.
    whole, rest = divmod(billable, size)
    packages = whole + (1 if rest else 0)
    return quantize(packages * price, currency)


def _percentage_fees(
    *,
    transactions: Sequence[Decimal | int | str],
    rate: Decimal | int | str,
    fixed_amount: Decimal | int | str,
    per_transaction_min: Decimal | int | str | None,
    per_transaction_max: Decimal | int | str | None,
    free_units: Decimal | int | str | None,
    free_amount: Decimal | int | str | None,
) -> tuple[Decimal, int]:
    """Exact total fee and the number of charged (non-free) transactions."""
    pct = _non_negative(rate, "rate")
    fixed = _non_negative(fixed_amount, "fixed_amount")
    low = _optional_non_negative(per_transaction_min, "per_transaction_min")
    high = _optional_non_negative(per_transaction_max, "per_transaction_max")
    if low is not None and high is not None and low > high:
        raise ValueError(f"per_transaction_min {low} must not be greater than per_transaction_max {high}.")
    count_limit = _optional_non_negative(free_units, "free_units") or ZERO
    amount_limit = _optional_non_negative(free_amount, "free_amount") or ZERO

    allowance_open = count_limit > 0 or amount_limit > 0
    running_count = 0
    running_amount = ZERO
    total = ZERO
    charged = 0
    for index, raw in enumerate(transactions):
        amount = _non_negative(raw, f"transactions[{index}]")
        if allowance_open:
            running_count += 1
            running_amount += amount
            within_count = count_limit == 0 or running_count <= count_limit
            within_amount = amount_limit == 0 or running_amount <= amount_limit
            allowance_open = within_count and within_amount
            if allowance_open:
                continue
        fee = _percent_of(amount, pct) + fixed
        if low is not None:
            fee = max(fee, low)
        if high is not None:
            fee = min(fee, high)
        total += fee
        charged += 1
    return total, charged


def price_percentage(
    *,
    transactions: Sequence[Decimal | int | str],
    rate: Decimal | int | str,
    fixed_amount: Decimal | int | str = ZERO,
    per_transaction_min: Decimal | int | str | None = None,
    per_transaction_max: Decimal | int | str | None = None,
    free_units: Decimal | int | str | None = None,
    free_amount: Decimal | int | str | None = None,
    currency: str,
) -> Decimal:
    """Sum of per-transaction fees, after the free allowance.

    Fee of one transaction = amount × rate/100 + fixed_amount, then raised to
    ``per_transaction_min`` and lowered to ``per_transaction_max`` when those are not
    None. Fees are summed exactly and the total is rounded once.

    Free allowance (a limit is active when it is > 0; None or 0 means no such limit;
    with neither active there is no allowance): transactions are taken in the given
    order (pass them sorted by timestamp). Transaction i (1-based) is free while
    i ≤ free_units AND the running sum of amounts including it ≤ free_amount. The
    first transaction that exceeds either limit is charged in full (no partial
    allowance), and the allowance is then closed for the rest of the period. A free
    transaction pays nothing: no rate, no fixed amount, no minimum.
    """
    total, _ = _percentage_fees(
        transactions=transactions,
        rate=rate,
        fixed_amount=fixed_amount,
        per_transaction_min=per_transaction_min,
        per_transaction_max=per_transaction_max,
        free_units=free_units,
        free_amount=free_amount,
    )
    return quantize(total, currency)


def price_graduated_percentage(*, total_amount: Decimal | int | str, tiers: Sequence[Tier], currency: str) -> Decimal:
    """Each tier's slice of the summed amount × tier.rate/100, plus each entered tier's flat_amount."""
    amount = _non_negative(total_amount, "total_amount")
    total = _graduated_total(amount, _checked_tiers(tiers), lambda slice_, tier: _percent_of(slice_, tier.rate))
    return quantize(total, currency)


def apply_minimum_commitment(
    *, charge: Decimal | int | str, minimum: Decimal | int | str | None, currency: str
) -> tuple[Decimal, Decimal]:
    """Return ``(charge, top_up)`` with top_up = max(0, minimum - charge); None means no minimum."""
    charge_q = quantize(_non_negative(charge, "charge"), currency)
    minimum_q = quantize(_optional_non_negative(minimum, "minimum") or ZERO, currency)
    return charge_q, max(quantize(ZERO, currency), minimum_q - charge_q)


# --------------------------------------------------------------------------- usage dispatcher


def _decimal_or_none(value: Any, name: str) -> Decimal | None:
    return None if value is None or value == "" else to_decimal(value, name)


@dataclass(frozen=True, slots=True)
class UsageSpec:
    """Every field of a usage price line (DESIGN.md §5 names; ``package_amount`` is the
    package model's ``amount``). Unused fields of other models keep their defaults.

    ``free_units`` means units for per_unit/graduated/volume/package and a transaction
    count for percentage; ``free_amount`` only applies to percentage.
    """

    charge_model: str
    unit_amount: Decimal = ZERO
    tiers: tuple[Tier, ...] = ()
    package_size: Decimal | None = None
    package_amount: Decimal = ZERO
    rate: Decimal = ZERO
    fixed_amount: Decimal = ZERO
    per_transaction_min: Decimal | None = None
    per_transaction_max: Decimal | None = None
    free_units: Decimal = ZERO
    free_amount: Decimal = ZERO
    minimum_commitment: Decimal = ZERO

    def __post_init__(self) -> None:
        if self.charge_model not in CHARGE_MODELS:
            raise ValueError(f"Unknown charge_model {self.charge_model!r}; use one of {', '.join(CHARGE_MODELS)}.")
        for name in (
            "unit_amount",
            "package_amount",
            "rate",
            "fixed_amount",
            "free_units",
            "free_amount",
            "minimum_commitment",
        ):
            value = getattr(self, name)
            object.__setattr__(self, name, ZERO if value is None else to_decimal(value, name))
        for name in ("package_size", "per_transaction_min", "per_transaction_max"):
            object.__setattr__(self, name, _decimal_or_none(getattr(self, name), name))
        tiers = tuple(t if isinstance(t, Tier) else Tier.from_dict(t) for t in self.tiers)
        object.__setattr__(self, "tiers", tiers)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> UsageSpec:
        """Build from the API/JSON form of a usage price line (DESIGN.md §5)."""
        model = data.get("charge_model", "")

        def pick(name: str) -> Any:
            value = data.get(name)
            return ZERO if value in (None, "") else value

        return cls(
            charge_model=model,
            unit_amount=pick("unit_amount"),
            tiers=tuple(data.get("tiers") or ()),
            package_size=_decimal_or_none(data.get("package_size"), "package_size"),
            # The package model calls its price "amount" in the API.
            package_amount=pick("package_amount") if "package_amount" in data else pick("amount"),
            rate=pick("rate"),
            fixed_amount=pick("fixed_amount"),
            per_transaction_min=_decimal_or_none(data.get("per_transaction_min"), "per_transaction_min"),
            per_transaction_max=_decimal_or_none(data.get("per_transaction_max"), "per_transaction_max"),
            free_units=pick("free_units"),
            free_amount=pick("free_amount"),
            minimum_commitment=pick("minimum_commitment"),
        )


@dataclass(frozen=True, slots=True)
class UsageCharge:
    """A priced usage line: ``amount`` by the charge model, ``minimum_top_up`` to reach
    the minimum commitment, and the quantity actually charged (see :func:`price_usage`)."""

    amount: Decimal
    minimum_top_up: Decimal
    billable_quantity: Decimal

    @property
    def total(self) -> Decimal:
        return self.amount + self.minimum_top_up


def price_usage(
    model: str,
    *,
    quantity: Decimal | int | str | None = None,
    transactions: Sequence[Decimal | int | str] | None = None,
    spec: UsageSpec,
    currency: str,
) -> UsageCharge:
    """Price one period's usage by ``model`` and top it up to the minimum commitment.

    - per_unit, graduated, volume: ``free_units`` are subtracted from ``quantity``
      first (never below 0), then the remainder is priced, so free units are always
      the cheapest, first units. billable_quantity = that remainder.
    - package: :func:`price_package` with ``free_units``; billable_quantity = quantity
      after free units.
    - percentage: :func:`price_percentage` over ``transactions`` (each event's amount);
      billable_quantity = number of charged (non-free) transactions.
    - graduated_percentage: tiers over sum(``transactions``); the free allowance fields
      do not apply (use a 0 % first tier instead); billable_quantity = the summed amount.

    ``model`` must equal ``spec.charge_model``; a mismatch is a caller bug and raises.
    """
    if model not in CHARGE_MODELS:
        raise ValueError(f"Unknown charge model {model!r}; use one of {', '.join(CHARGE_MODELS)}.")
    if model != spec.charge_model:
        raise ValueError(f"Charge model {model!r} does not match the spec's charge_model {spec.charge_model!r}.")

    if model in ("percentage", "graduated_percentage"):
        if transactions is None:
            raise ValueError(f"The {model} charge model needs the transactions' amounts.")
        if model == "percentage":
            exact, charged = _percentage_fees(
                transactions=transactions,
                rate=spec.rate,
                fixed_amount=spec.fixed_amount,
                per_transaction_min=spec.per_transaction_min,
                per_transaction_max=spec.per_transaction_max,
                free_units=spec.free_units,
                free_amount=spec.free_amount,
            )
            amount, billable = quantize(exact, currency), Decimal(charged)
        else:
            billable = sum((_non_negative(t, f"transactions[{i}]") for i, t in enumerate(transactions)), ZERO)
            amount = price_graduated_percentage(total_amount=billable, tiers=spec.tiers, currency=currency)
    else:
        if quantity is None:
            raise ValueError(f"The {model} charge model needs a quantity.")
        q = _non_negative(quantity, "quantity")
        billable = max(ZERO, q - _non_negative(spec.free_units, "free_units"))
        if model == "per_unit":
            amount = price_per_unit(quantity=billable, unit_amount=spec.unit_amount, currency=currency)
        elif model == "graduated":
            amount = price_graduated(quantity=billable, tiers=spec.tiers, currency=currency)
        elif model == "volume":
            amount = price_volume(quantity=billable, tiers=spec.tiers, currency=currency)
        else:
            if spec.package_size is None:
                raise ValueError("The package charge model needs a package_size.")
            amount = price_package(
                quantity=q,
                package_size=spec.package_size,
                amount=spec.package_amount,
                free_units=spec.free_units,
                currency=currency,
            )

    amount, top_up = apply_minimum_commitment(charge=amount, minimum=spec.minimum_commitment, currency=currency)
    return UsageCharge(amount=amount, minimum_top_up=top_up, billable_quantity=billable)


# --------------------------------------------------------------------------- aggregation


def aggregate(values: Iterable[Any], how: str) -> Decimal:
    """Aggregate a period's usage values for one metric.

    sum/max: values are quantities (Decimal, int or str; max of nothing is 0).
    count: number of values. unique_count: number of distinct hashable property
    values, ignoring None (events that lack the property are not counted).
    """
    if how not in AGGREGATIONS:
        raise ValueError(f"Unknown aggregation {how!r}; use one of {', '.join(AGGREGATIONS)}.")
    items = list(values)
    if how == "count":
        return Decimal(len(items))
    if how == "unique_count":
        distinct: set[Hashable] = {v for v in items if v is not None}
        return Decimal(len(distinct))
    numbers = [to_decimal(v, "value") for v in items]
    if how == "sum":
        return sum(numbers, ZERO)
    return max(numbers, default=ZERO)


# --------------------------------------------------------------------------- periods


@dataclass(frozen=True, slots=True, order=True)
class Period:
    """An inclusive date range [start, end]."""

    start: date
    end: date

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            value = getattr(self, name)
            # A datetime is a date subclass, but mixing them miscounts days.
            if not isinstance(value, date) or isinstance(value, datetime):
                raise TypeError(f"Period {name} must be a datetime.date, not {type(value).__name__}.")
        if self.start > self.end:
            raise ValueError(f"Period start {self.start} is after its end {self.end}.")

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def contains(self, day: date) -> bool:
        return self.start <= day <= self.end

    def __str__(self) -> str:
        return f"{self.start.isoformat()}..{self.end.isoformat()}"


# Pure and called hundreds of thousands of times when a portfolio's schedules are walked (the
# forecast and valuation of every contract): the answers are remembered. Dates, strings and the
# frozen Period are immutable, so a remembered answer cannot be changed by a caller.
@functools.lru_cache(maxsize=65536)
def add_months(day: date, months: int) -> date:
    """Same day-of-month ``months`` later (or earlier), clamped to the month's last day."""
    index = day.year * 12 + (day.month - 1) + months
    year, month0 = divmod(index, 12)
    last = calendar.monthrange(year, month0 + 1)[1]
    return date(year, month0 + 1, min(day.day, last))


def _check_schedule(frequency: str, anchor: str) -> int:
    if frequency not in FREQUENCIES:
        raise ValueError(f"Unknown frequency {frequency!r}; use one of {', '.join(FREQUENCIES)}.")
    if anchor not in ANCHORS:
        raise ValueError(f"Unknown billing anchor {anchor!r}; use one of {', '.join(ANCHORS)}.")
    return FREQUENCIES[frequency]


@functools.lru_cache(maxsize=65536)
def full_period_for(*, period_start: date, frequency: str, anchor: str, contract_start: date) -> Period:
    """The nominal (unclipped) period containing ``period_start``: the proration denominator.

    calendar: calendar month, calendar quarter (Jan–Mar, Apr–Jun, …) or calendar year.
    anniversary: period k starts on contract_start + k×(1, 3 or 12) months, always
    counted from contract_start's own day-of-month and clamped to the month's end
    (31 Jan -> 28/29 Feb -> 31 Mar -> 30 Apr, never drifting to the 28th); each period
    ends the day before the next one starts (31 Jan–27 Feb, 28 Feb–30 Mar, …).
    """
    step = _check_schedule(frequency, anchor)
    if anchor == "calendar":
        first_month = (period_start.month - 1) // step * step + 1
        start = date(period_start.year, first_month, 1)
        return Period(start, add_months(start, step) - timedelta(days=1))

    months = (period_start.year - contract_start.year) * 12 + period_start.month - contract_start.month
    k = months // step
    while add_months(contract_start, k * step) > period_start:
        k -= 1
    while add_months(contract_start, (k + 1) * step) <= period_start:
        k += 1
    start = add_months(contract_start, k * step)
    return Period(start, add_months(contract_start, (k + 1) * step) - timedelta(days=1))


def billing_periods(
    *,
    contract_start: date,
    contract_end: date | None,
    frequency: str,
    anchor: str,
    until: date,
) -> list[Period]:
    """Every billing period that starts on or before ``until``, clipped to the contract.

    Periods follow :func:`full_period_for`; the first starts on contract_start and the
    last ends on contract_end (None = open-ended), so partial periods come out clipped
    and are prorated with :func:`prorate` against their full period.
    """
    _check_schedule(frequency, anchor)
    if contract_end is not None and contract_end < contract_start:
        raise ValueError(f"Contract end {contract_end} is before its start {contract_start}.")
    periods: list[Period] = []
    cursor = contract_start
    while cursor <= until and (contract_end is None or cursor <= contract_end):
        nominal = full_period_for(
            period_start=cursor, frequency=frequency, anchor=anchor, contract_start=contract_start
        )
        end = nominal.end if contract_end is None else min(nominal.end, contract_end)
        periods.append(Period(cursor, end))
        cursor = nominal.end + timedelta(days=1)
    return periods


def prorate(*, amount: Decimal | int | str, period: Period, full: Period, currency: str) -> Decimal:
    """amount × period.days / full.days, rounded once; a full period gives the amount.

    Retainer 3,100.00/month from 15 January (calendar): 17/31 × 3,100 = 1,700.00.
    """
    value = _non_negative(amount, "amount")
    if not (full.start <= period.start and period.end <= full.end):
        raise ValueError(f"Period {period} must lie inside its full period {full}.")
    return quantize(value * period.days / full.days, currency)


# --------------------------------------------------------------------------- recurring


def price_recurring(*, amount: Decimal | int | str, period: Period, full_period: Period, currency: str) -> Decimal:
    """A retainer/subscription amount for ``period``, prorated by days of ``full_period``."""
    return prorate(amount=amount, period=period, full=full_period, currency=currency)


def price_overage_hours(
    *,
    hours_used: Decimal | int | str,
    included_hours: Decimal | int | str,
    overage_rate: Decimal | int | str,
    currency: str,
) -> tuple[Decimal, Decimal]:
    """Return ``(overage_hours, amount)``: hours beyond the included ones at overage_rate."""
    used = _non_negative(hours_used, "hours_used")
    included = _non_negative(included_hours, "included_hours")
    rate = _non_negative(overage_rate, "overage_rate")
    overage = max(ZERO, used - included)
    return overage, quantize(overage * rate, currency)


# --------------------------------------------------------------------------- time & materials


@dataclass(frozen=True, slots=True)
class TimeLine:
    """Billable hours of one role at one hourly rate."""

    role: str
    hours: Decimal
    rate: Decimal

    def __post_init__(self) -> None:
        object.__setattr__(self, "hours", _non_negative(self.hours, "hours"))
        object.__setattr__(self, "rate", _non_negative(self.rate, "rate"))


@dataclass(frozen=True, slots=True)
class TMLine:
    """One invoice line of a time-and-materials charge."""

    role: str
    hours: Decimal
    rate: Decimal
    amount: Decimal


@dataclass(frozen=True, slots=True)
class TMCharge:
    """Per-role lines, their subtotal, and what may be billed under the cap."""

    lines: tuple[TMLine, ...]
    subtotal: Decimal
    capped_amount: Decimal
    cap_reduction: Decimal


def price_time_and_materials(
    lines: Iterable[TimeLine], *, cap_remaining: Decimal | int | str | None, currency: str
) -> TMCharge:
    """Price billable time at the rate card, then hold it under the not-to-exceed cap.

    Lines with the same role and rate are merged (hours summed) into one invoice line,
    in order of first appearance, and each line is rounded once (hours × rate). A role
    at two rates (e.g. an override mid-period) keeps two lines.
    ``cap_remaining`` is the cap minus what was already invoiced (None = no cap);
    capped_amount = min(subtotal, cap_remaining) and cap_reduction = subtotal -
    capped_amount. A cap already overrun (negative remaining) leaves nothing billable.
    """
    merged: dict[tuple[str, Decimal], Decimal] = {}
    for line in lines:
        key = (line.role, line.rate)
        merged[key] = merged.get(key, ZERO) + line.hours
    priced = tuple(
        TMLine(role=role, hours=hours, rate=rate, amount=quantize(hours * rate, currency))
        for (role, rate), hours in merged.items()
    )
    subtotal = quantize(sum((line.amount for line in priced), ZERO), currency)
    if cap_remaining is None:
        capped = subtotal
    else:
        remaining = quantize(max(ZERO, to_decimal(cap_remaining, "cap_remaining")), currency)
        capped = min(subtotal, remaining)
    return TMCharge(lines=priced, subtotal=subtotal, capped_amount=capped, cap_reduction=subtotal - capped)


# --------------------------------------------------------------------------- splitting


def split_over_periods(*, total: Decimal | int | str, periods: Sequence[Period], currency: str) -> list[Decimal]:
    """Split ``total`` over ``periods`` by their days; the parts sum exactly to the total."""
    if not periods:
        raise ValueError("split_over_periods needs at least one period.")
    return allocate(total=total, weights=[Decimal(p.days) for p in periods], currency=currency)
