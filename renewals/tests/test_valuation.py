"""The alert's figures and the next term's prices: pure functions, table-driven, no database."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from types import SimpleNamespace as Line

import pytest

from renewals.valuation import (
    annual_recurring_value,
    next_term,
    remaining_value,
    renewal_value,
    uplift_amount,
    uplift_unit_price,
)

D = Decimal


def line(
    kind="recurring",
    amount=None,
    frequency="monthly",
    minimum_commitment=D(0),
    bill_on=None,
    expected_date=None,
    percent_of_fixed_fee=None,
):
    return Line(
        kind=kind,
        amount=amount,
        frequency=frequency,
        minimum_commitment=minimum_commitment,
        bill_on=bill_on,
        expected_date=expected_date,
        percent_of_fixed_fee=percent_of_fixed_fee,
    )


@pytest.mark.parametrize(
    "lines, expected",
    [
        ([line(amount=D("3100.00"))], D("37200.00")),
        ([line(amount=D("3000"), frequency="quarterly")], D("12000.00")),
        ([line(amount=D("50000"), frequency="annual")], D("50000.00")),
        ([line(amount=D("1000")), line(amount=D("1000"), frequency="quarterly")], D("16000.00")),
        # a usage minimum commitment is committed recurring money; usage above it is not
        ([line(kind="usage", frequency="monthly", minimum_commitment=D("500"))], D("6000.00")),
        ([line(kind="usage", frequency="monthly")], D("0.00")),
        # one-offs and T&M are not recurring
        (
            [line(kind="fixed_fee", amount=D("5000"), frequency=""), line(kind="time_and_materials", frequency="")],
            D("0.00"),
        ),
    ],
)
def test_annual_recurring_value(lines, expected):
    assert annual_recurring_value(lines=lines, currency="USD") == expected


def test_annual_recurring_value_uses_the_currency_digits():
    assert annual_recurring_value(lines=[line(amount=D("1000.4"), frequency="quarterly")], currency="JPY") == D("4002")
    assert annual_recurring_value(lines=[line(amount=D("1.0005"))], currency="KWD") == D("12.006")


@pytest.mark.parametrize(
    "as_of, expected",
    [
        # 1 Nov: November and December remain
        (date(2026, 11, 1), D("2000.00")),
        # 16 Nov: 15/30 of November + December
        (date(2026, 11, 16), D("1500.00")),
        # the last day: 1/31 of December
        (date(2026, 12, 31), D("32.26")),
        # after the end: nothing
        (date(2027, 1, 1), D("0.00")),
    ],
)
def test_remaining_value_prorates_the_current_period_like_billing(as_of, expected):
    value = remaining_value(
        lines=[line(amount=D("1000"))],
        currency="USD",
        contract_start=date(2026, 1, 1),
        end=date(2026, 12, 31),
        anchor="calendar",
        as_of=as_of,
    )
    assert value == expected


def test_remaining_value_counts_one_offs_not_yet_due():
    lines = [
        line(kind="fixed_fee", amount=D("5000"), frequency="", bill_on=date(2026, 1, 15)),  # billed already
        line(kind="fixed_fee", amount=D("700"), frequency="", bill_on=date(2026, 12, 1)),
        line(kind="milestone", amount=D("12000"), frequency="", expected_date=date(2026, 3, 31)),  # past
        line(kind="milestone", amount=D("3000"), frequency="", expected_date=date(2026, 12, 15)),
        line(kind="milestone", amount=None, frequency="", percent_of_fixed_fee=D("10"), expected_date=None),
        line(kind="time_and_materials", frequency=""),
    ]
    value = remaining_value(
        lines=lines,
        currency="USD",
        contract_start=date(2026, 1, 1),
        end=date(2026, 12, 31),
        anchor="calendar",
        as_of=date(2026, 11, 1),
    )
    assert value == D("700") + D("3000") + D("570.00")  # 10 % of the 5,700 fixed fees


def test_renewal_value_bundles_both_figures():
    value = renewal_value(
        lines=[line(amount=D("3100.00"))],
        currency="USD",
        contract_start=date(2026, 1, 15),
        end=date(2026, 12, 31),
        anchor="calendar",
        as_of=date(2026, 11, 1),
    )
    assert (value.currency, value.annual_recurring, value.remaining) == ("USD", D("37200.00"), D("6200.00"))


@pytest.mark.parametrize(
    "end, months, expected",
    [
        (date(2026, 12, 31), 12, (date(2027, 1, 1), date(2027, 12, 31))),
        (date(2026, 6, 30), 12, (date(2026, 7, 1), date(2027, 6, 30))),
        (date(2026, 1, 30), 1, (date(2026, 1, 31), date(2026, 2, 27))),
        (date(2027, 2, 28), 24, (date(2027, 3, 1), date(2029, 2, 28))),
    ],
)
def test_next_term_starts_the_day_after_the_end(end, months, expected):
    assert next_term(end=end, term_months=months) == expected


def test_next_term_needs_a_positive_term():
    with pytest.raises(ValueError):
        next_term(end=date(2026, 12, 31), term_months=0)


@pytest.mark.parametrize(
    "value, pct, currency, expected",
    [
        (D("3100.00"), D("5"), "USD", D("3255.00")),
        (D("1000.00"), D("3.5"), "USD", D("1035.00")),
        (D("99.99"), D("7"), "USD", D("106.99")),  # 106.9893 half-up
        (D("0.125"), D("0"), "USD", D("0.13")),
        (D("1000"), D("5"), "JPY", D("1050")),
        (D("10.005"), D("10"), "KWD", D("11.006")),
        (None, D("5"), "USD", None),
        (D("0"), D("5"), "USD", D("0")),  # unchanged, as written
    ],
)
def test_uplift_amount_rounds_half_up_to_the_currency(value, pct, currency, expected):
    assert uplift_amount(value, pct=pct, currency=currency) == expected


@pytest.mark.parametrize(
    "value, pct, expected",
    [
        (D("0.0015"), D("5"), D("0.001575")),  # a sub-cent unit price keeps its precision
        (D("0.01"), D("5"), D("0.0105")),
        (D("1.00"), D("5"), D("1.05")),
        (D("0.50"), D("10"), D("0.55")),
        (D("100"), D("10"), D("110")),
        (D("0.0000017"), D("50"), D("0.000003")),  # capped at the field's six places, half-up
    ],
)
def test_uplift_unit_price_keeps_unit_precision(value, pct, expected):
    result = uplift_unit_price(value, pct=pct)
    assert result == expected and str(result) == str(expected)
