"""Impact of exceptions on coming invoices (pure: loaded rows in, Decimal out).

The forecast is the contract's recurring schedule (``revexos.schedule.line_periods`` priced with
``revexos.pricing.price_recurring``, exactly as billing will price it): the next periods of every
recurring line that start after today. Usage and time are not committed money, so they are not
forecast; an hourly override's impact is stated per hour instead.

The uplift an exception's expiry brings to a coming period is what billing will charge for it
minus what it would charge if the exception never expired:

    discount   uplift = discount if it ran on unlimited − discount as it is (window and cycles)
    override   uplift = price at the contract rate − price at the custom rate, for periods after
               the override ends (negative when the custom rate was above the contract's)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from discounts import applicator
from revexos.money import quantize
from revexos.pricing import Period, price_recurring
from revexos.schedule import line_periods

ZERO = Decimal(0)
HORIZON_DAYS = 400
BILLABLE = ("active",)  # draft contracts are kept out of billing; ended ones have no coming periods


@dataclass(frozen=True)
class ForecastLine:
    contract_id: int
    line_ref: str
    period_start: date
    period_end: date
    currency: str
    amount: Decimal  # as billing will price it (custom rate where one is in force)
    contract_amount: Decimal  # at the contract's own rate
    full: Period  # the nominal period: proration denominator
    override_id: int | None = None

    def as_line(self) -> applicator.Line:
        return applicator.Line(
            key=(self.contract_id, self.line_ref, self.period_start),
            amount=self.amount,
            line_ref=self.line_ref,
            period_start=self.period_start,
            period_end=self.period_end,
            contract_id=self.contract_id,
        )


OverrideLookup = Callable[[int, str, str, date], Any]  # (contract_id, line_ref, role, on) -> override row or None


def recurring_forecast(
    *, contract, versions: Sequence[Any], after: date, periods: int, override_for: OverrideLookup | None = None
) -> list[ForecastLine]:
    """The next ``periods`` periods of each recurring line of ``contract`` starting after ``after``."""
    if not versions or contract.status not in BILLABLE or (contract.end_date and contract.end_date <= after):
        return []
    refs: dict[str, None] = {}
    for version in versions:
        for line in version.price_lines.all():
            if line.kind == "recurring":
                refs.setdefault(line.line_ref, None)
    result: list[ForecastLine] = []
    for ref in refs:
        schedule = line_periods(
            contract_start=contract.start_date,
            contract_end=contract.end_date,
            versions=versions,
            line_ref=ref,
            kind="recurring",
            until=after + timedelta(days=HORIZON_DAYS),
        )
        coming = [lp for lp in schedule if lp.period.start > after][:periods]
        for lp in coming:
            currency = lp.version.currency
            contract_amount = price_recurring(
                amount=lp.line.amount, period=lp.period, full_period=lp.full, currency=currency
            )
            amount, override_id = contract_amount, None
            override = override_for(contract.pk, ref, "", lp.period.start) if override_for else None
            if override is not None:
                amount = price_recurring(amount=override.rate, period=lp.period, full_period=lp.full, currency=currency)
                override_id = override.pk
            result.append(
                ForecastLine(
                    contract.pk,
                    ref,
                    lp.period.start,
                    lp.period.end,
                    currency,
                    amount,
                    contract_amount,
                    lp.full,
                    override_id,
                )
            )
    return result


@dataclass(frozen=True)
class PeriodUplift:
    period_start: date
    currency: str
    discounted: Decimal  # what the exception takes off (or adds) in this period as it stands
    uplift: Decimal  # what its expiry adds to this period's billing


def discount_uplift(*, terms: applicator.DiscountTerms, lines: Sequence[ForecastLine]) -> list[PeriodUplift]:
    """Per coming period: the discount as it stands, and the uplift its expiry brings."""
    result: list[PeriodUplift] = []
    by_currency: dict[str, list[ForecastLine]] = {}
    for line in lines:
        by_currency.setdefault(line.currency, []).append(line)
    unlimited = replace(terms, end=None, cycles_remaining=None)
    for currency, group in by_currency.items():
        if terms.kind == "fixed" and terms.currency != currency:
            continue
        starts = sorted({line.period_start for line in group})
        plain = [line.as_line() for line in group]
        day = starts[0]
        actual = applicator.apply_discounts(lines=plain, discounts=[terms], currency=currency, billing_date=day)
        endless = applicator.apply_discounts(lines=plain, discounts=[unlimited], currency=currency, billing_date=day)
        for start in starts:
            a = sum((x.amount for x in actual.applications if x.line_key[2] == start), ZERO)
            e = sum((x.amount for x in endless.applications if x.line_key[2] == start), ZERO)
            result.append(PeriodUplift(start, currency, quantize(a, currency), quantize(e - a, currency)))
    return result


def override_uplift(*, override, lines: Sequence[ForecastLine]) -> list[PeriodUplift]:
    """Per coming period of the override's recurring line: its effect as it stands, and the uplift
    after it ends (contract price − custom price, for periods starting after its end date)."""
    result: list[PeriodUplift] = []
    for line in lines:
        if line.contract_id != override.contract_id or line.line_ref != override.line_ref or override.role:
            continue
        custom = price_recurring(
            amount=override.rate,
            period=Period(line.period_start, line.period_end),
            full_period=line.full,
            currency=line.currency,
        )
        effect = line.contract_amount - line.amount if line.override_id == override.pk else ZERO
        uplift = line.contract_amount - custom if line.period_start > override.end_date else ZERO
        result.append(PeriodUplift(line.period_start, line.currency, effect, uplift))
    return result


def month_start(day: date) -> date:
    return day.replace(day=1)


def next_month(day: date) -> tuple[date, date]:
    first = (day.replace(day=1) + timedelta(days=32)).replace(day=1)
    last = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    return first, last


def quarter_end(day: date) -> date:
    month = ((day.month - 1) // 3 + 1) * 3
    return (date(day.year, month, 1) + timedelta(days=32)).replace(day=1) - timedelta(days=1)
