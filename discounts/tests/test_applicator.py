"""The pure applicator: table-driven rules and properties (no database)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from discounts.applicator import (
    CreditBalance,
    DiscountTerms,
    Line,
    apply_credits,
    apply_discounts,
    coverage,
)
from revexos.money import CurrencyMismatch

D = Decimal
MAR = (date(2026, 3, 1), date(2026, 3, 31))
APR = (date(2026, 4, 1), date(2026, 4, 30))


def month(start: date, end: date, amount: str, key="L", ref="L1") -> Line:
    return Line(key=key, amount=D(amount), line_ref=ref, period_start=start, period_end=end)


def pct(value="10", start=date(2026, 1, 1), end=None, **kw) -> DiscountTerms:
    return DiscountTerms(id=kw.pop("id", 1), kind="percentage", value=D(value), start=start, end=end, **kw)


def fixed(value, start=date(2026, 1, 1), end=None, currency="USD", **kw) -> DiscountTerms:
    return DiscountTerms(
        id=kw.pop("id", 1), kind="fixed", value=D(value), start=start, end=end, currency=currency, **kw
    )


@pytest.mark.parametrize(
    "window, period, expected",
    [
        ((date(2026, 1, 1), date(2026, 3, 31)), MAR, D(1)),  # inside
        ((date(2026, 1, 1), date(2026, 3, 31)), APR, D(0)),  # after the end
        ((date(2026, 5, 1), None), APR, D(0)),  # before the start
        ((date(2026, 1, 1), date(2026, 3, 15)), MAR, D(15) / D(31)),  # straddles the end
        ((date(2026, 3, 17), None), MAR, D(15) / D(31)),  # straddles the start
        ((date(2026, 3, 10), date(2026, 3, 10)), MAR, D(1) / D(31)),  # one day
    ],
)
def test_coverage_is_the_share_of_days_inside_the_window(window, period, expected):
    assert coverage(start=window[0], end=window[1], period_start=period[0], period_end=period[1]) == expected


@pytest.mark.parametrize(
    "lines, discounts, subtotal, discount_total, total, parts",
    [
        # 10 % ending 31 March: March discounted, April not.
        (
            [month(*MAR, "3100.00", key="m")],
            [pct(end=date(2026, 3, 31))],
            "3100.00",
            "310.00",
            "2790.00",
            {"m": "310.00"},
        ),
        ([month(*APR, "3100.00", key="a")], [pct(end=date(2026, 3, 31))], "3100.00", "0.00", "3100.00", {}),
        # Straddling the end: 15 of 31 days of 10 % of 3,100.00 = 150.00.
        (
            [month(*MAR, "3100.00", key="m")],
            [pct(end=date(2026, 3, 15))],
            "3100.00",
            "150.00",
            "2950.00",
            {"m": "150.00"},
        ),
        # Fixed 100.00 per cycle spread 1:2 with the remainder on the last line.
        (
            [month(*MAR, "100.00", key="a"), month(*MAR, "200.00", key="b", ref="L2")],
            [fixed("100.00")],
            "300.00",
            "100.00",
            "200.00",
            {"a": "33.33", "b": "66.67"},
        ),
        # A fixed discount never exceeds the lines.
        ([month(*MAR, "40.00", key="a")], [fixed("100.00")], "40.00", "40.00", "0.00", {"a": "40.00"}),
        # Price-line scope: only line L2.
        (
            [month(*MAR, "100.00", key="a"), month(*MAR, "200.00", key="b", ref="L2")],
            [pct("50", line_ref="L2")],
            "300.00",
            "100.00",
            "200.00",
            {"b": "100.00"},
        ),
        # Line-scoped first, then invoice-scoped on what is left: 200 − 50 % = 100; then 10 % of 100 + 100.
        (
            [month(*MAR, "100.00", key="a"), month(*MAR, "200.00", key="b", ref="L2")],
            [pct("10", id=2), pct("50", id=1, line_ref="L2")],
            "300.00",
            "120.00",
            "180.00",
            {"a": "10.00", "b": "110.00"},
        ),
        # Lines without a period are dated on the billing date (15 March: inside).
        (
            [Line(key="f", amount=D("5000.00"))],
            [pct(end=date(2026, 3, 31))],
            "5000.00",
            "500.00",
            "4500.00",
            {"f": "500.00"},
        ),
        # Half-up once per discount: 10 % of 0.05 + 0.05 = 0.01.
        ([month(*MAR, "0.05", key="a"), month(*MAR, "0.05", key="b")], [pct()], "0.10", "0.01", "0.09", {"a": "0.01"}),
    ],
)
def test_discount_rules(lines, discounts, subtotal, discount_total, total, parts):
    result = apply_discounts(lines=lines, discounts=discounts, currency="USD", billing_date=date(2026, 3, 15))
    assert (result.subtotal, result.discount_total, result.total) == (D(subtotal), D(discount_total), D(total))
    got: dict = {}
    for a in result.applications:
        got[a.line_key] = got.get(a.line_key, D(0)) + a.amount
    assert got == {k: D(v) for k, v in parts.items()}


def test_cycles_are_granted_to_the_earliest_new_periods():
    lines = [month(date(2026, m, 1), date(2026, m, 28), "100.00", key=m) for m in (1, 2, 3, 4)]
    terms = pct(cycles_remaining=2, cycle_keys_used=frozenset({"2026-01-01"}))
    result = apply_discounts(lines=lines, discounts=[terms], currency="USD", billing_date=date(2026, 4, 1))
    # January was already counted (free), February and March take the two cycles left, April gets nothing.
    assert sorted(a.line_key for a in result.applications) == [1, 2, 3]


def test_fixed_discount_is_per_cycle_and_prorated_when_straddling():
    lines = [month(*MAR, "1000.00", key="m"), month(*APR, "1000.00", key="a")]
    result = apply_discounts(
        lines=lines, discounts=[fixed("300.00", end=date(2026, 4, 15))], currency="USD", billing_date=date(2026, 4, 1)
    )
    assert {a.line_key: a.amount for a in result.applications} == {"m": D("300.00"), "a": D("150.00")}


def test_fixed_discount_in_another_currency_is_refused():
    with pytest.raises(CurrencyMismatch):
        apply_discounts(
            lines=[month(*MAR, "10.00")],
            discounts=[fixed("1", currency="EUR")],
            currency="USD",
            billing_date=date(2026, 3, 1),
        )


def test_jpy_has_no_minor_unit():
    result = apply_discounts(
        lines=[month(*MAR, "1005", key="a")], discounts=[pct("10")], currency="JPY", billing_date=date(2026, 3, 1)
    )
    assert result.discount_total == D("101")  # 100.5 half-up


def test_tax_is_on_the_discounted_subtotal():
    result = apply_discounts(
        lines=[month(*MAR, "100.00")],
        discounts=[pct("10")],
        currency="USD",
        billing_date=date(2026, 3, 1),
        tax_rate=D("20"),
    )
    assert (result.tax_total, result.total) == (D("18.00"), D("108.00"))


# --------------------------------------------------------------------------- credits


@pytest.mark.parametrize(
    "due, credits, applied, left",
    [
        ("600.00", [CreditBalance(1, D("1000.00"), "USD")], {1: "600.00"}, "0.00"),
        ("700.00", [CreditBalance(1, D("400.00"), "USD")], {1: "400.00"}, "300.00"),
        # Expired on the day before issue: nothing.
        ("700.00", [CreditBalance(1, D("400.00"), "USD", expires_on=date(2026, 3, 31))], {}, "700.00"),
        # Expiring on the issue day still counts.
        ("700.00", [CreditBalance(1, D("400.00"), "USD", expires_on=date(2026, 4, 1))], {1: "400.00"}, "300.00"),
        # Other currency: nothing.
        ("700.00", [CreditBalance(1, D("400.00"), "EUR")], {}, "700.00"),
        # Pinned first, then the soonest expiry.
        (
            "500.00",
            [
                CreditBalance(1, D("400.00"), "USD"),
                CreditBalance(2, D("400.00"), "USD", expires_on=date(2026, 5, 1)),
                CreditBalance(3, D("100.00"), "USD", pinned=True),
            ],
            {3: "100.00", 2: "400.00"},
            "0.00",
        ),
    ],
)
def test_credit_rules(due, credits, applied, left):
    result = apply_credits(amount_due=D(due), credits=credits, currency="USD", on=date(2026, 4, 1))
    assert {a.credit_id: a.amount for a in result.applications} == {k: D(v) for k, v in applied.items()}
    assert result.amount_due == D(left)


def test_one_credit_across_two_invoices():
    first = apply_credits(
        amount_due=D("600.00"), credits=[CreditBalance(1, D("1000.00"), "USD")], currency="USD", on=date(2026, 4, 1)
    )
    balance = first.applications[0].balance_after
    second = apply_credits(
        amount_due=D("700.00"), credits=[CreditBalance(1, balance, "USD")], currency="USD", on=date(2026, 4, 1)
    )
    assert (first.amount_due, second.amount_due, second.applications[0].balance_after) == (
        D("0.00"),
        D("300.00"),
        D("0.00"),
    )


# --------------------------------------------------------------------------- properties

cents = st.integers(min_value=0, max_value=10_000_000).map(lambda n: D(n) / 100)
days = st.integers(min_value=1, max_value=27)


@settings(max_examples=300, deadline=None)
@given(
    amounts=st.lists(cents, min_size=1, max_size=8),
    value=st.integers(min_value=1, max_value=5_000_000).map(lambda n: D(n) / 100),
    end_day=days,
    start_day=days,
    kind=st.sampled_from(["fixed", "percentage"]),
)
def test_a_spread_discount_sums_exactly_and_never_exceeds_a_line(amounts, value, end_day, start_day, kind):
    if kind == "percentage":
        value = min(value, D(100))
    lines = [month(date(2026, 3, start_day), date(2026, 3, 28), str(a), key=i) for i, a in enumerate(amounts)]
    terms = DiscountTerms(
        id=1,
        kind=kind,
        value=value,
        start=date(2026, 3, 1),
        end=date(2026, 3, end_day),
        currency="USD" if kind == "fixed" else "",
    )
    result = apply_discounts(lines=lines, discounts=[terms], currency="USD", billing_date=date(2026, 3, 1))
    assert sum((a.amount for a in result.applications), D(0)) == result.discount_total
    by_line: dict = {}
    for a in result.applications:
        assert a.amount > 0
        by_line[a.line_key] = by_line.get(a.line_key, D(0)) + a.amount
    for i, amount in enumerate(amounts):
        assert by_line.get(i, D(0)) <= amount
    assert result.total == result.subtotal - result.discount_total >= 0
    assert result.discount_total == result.discount_total.quantize(D("0.01"))


@settings(max_examples=300, deadline=None)
@given(
    due=cents,
    balances=st.lists(st.tuples(cents, st.booleans(), st.integers(min_value=-5, max_value=5)), max_size=6),
)
def test_amount_due_is_never_negative_and_credits_never_overdraw(due, balances):
    on = date(2026, 4, 10)
    credits = [
        CreditBalance(i, b, "USD", expires_on=date(2026, 4, 10 + shift), pinned=p)
        for i, (b, p, shift) in enumerate(balances)
    ]
    result = apply_credits(amount_due=due, credits=credits, currency="USD", on=on)
    assert result.amount_due >= 0
    assert result.credit_applied + result.amount_due == due
    for a in result.applications:
        credit = credits[a.credit_id]
        assert 0 < a.amount <= credit.balance and a.balance_after == credit.balance - a.amount
        assert credit.expires_on >= on
