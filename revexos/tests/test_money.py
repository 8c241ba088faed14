"""Rounding and splitting rules of revexos.money: no database, table-driven plus laws."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from revexos.money import (
    CURRENCIES,
    MINOR_UNITS,
    CurrencyMismatch,
    Money,
    allocate,
    format_money,
    minor_units,
    quantize,
    split_evenly,
    to_decimal,
)

D = Decimal


# --------------------------------------------------------------------------- currencies


@pytest.mark.parametrize(
    ("currency", "digits"),
    [
        ("USD", 2),
        ("EUR", 2),
        ("GBP", 2),
        ("CHF", 2),
        ("SEK", 2),
        ("INR", 2),
        ("MXN", 2),
        ("JPY", 0),
        ("KRW", 0),
        ("CLP", 0),
        ("ISK", 0),
        ("VND", 0),
        ("KWD", 3),
        ("BHD", 3),
        ("OMR", 3),
        ("JOD", 3),
        ("TND", 3),
        ("IQD", 3),
        ("LYD", 3),
    ],
)
def test_minor_units_follow_iso_4217(currency: str, digits: int) -> None:
    assert minor_units(currency) == digits


@pytest.mark.parametrize("code", ["XXX", "usd", "", "US"])
def test_unknown_currency_is_rejected_with_a_clear_message(code: str) -> None:
    with pytest.raises(ValueError, match="Unknown currency .*ISO 4217"):
        minor_units(code)


def test_currency_choices_cover_every_known_code() -> None:
    assert ("USD", "USD") in CURRENCIES
    assert {code for code, _ in CURRENCIES} == set(MINOR_UNITS)


# --------------------------------------------------------------------------- quantize


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        (D("0.125"), "USD", D("0.13")),  # half-up, not banker's rounding
        (D("0.135"), "USD", D("0.14")),
        (D("0.124999"), "USD", D("0.12")),
        (D("-0.125"), "USD", D("-0.13")),  # ties away from zero
        (D("2.5"), "USD", D("2.50")),
        (D("1700"), "USD", D("1700.00")),
        (D("1234.5"), "JPY", D("1235")),
        (D("1234.49"), "JPY", D("1234")),
        (D("0.5"), "JPY", D("1")),
        (D("1.2345"), "KWD", D("1.235")),
        (D("1.2344"), "KWD", D("1.234")),
        (D("7"), "KWD", D("7.000")),
        (7, "USD", D("7.00")),
        ("3100", "USD", D("3100.00")),
        (" 12.345 ", "EUR", D("12.35")),
    ],
)
def test_quantize_rounds_half_up_to_the_minor_unit(amount: object, currency: str, expected: Decimal) -> None:
    result = quantize(amount, currency)  # type: ignore[arg-type]
    assert result == expected
    assert result.as_tuple().exponent == -minor_units(currency)


@pytest.mark.parametrize("bad", [0.1, 1.0, True, None, [1]])
def test_quantize_refuses_float_and_other_types(bad: object) -> None:
    with pytest.raises(TypeError, match="Decimal"):
        quantize(bad, "USD")  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["abc", "NaN", "Infinity", D("NaN"), D("-Infinity")])
def test_quantize_refuses_non_numbers(bad: object) -> None:
    with pytest.raises(ValueError):
        quantize(bad, "USD")  # type: ignore[arg-type]


def test_quantize_reports_amounts_too_large_for_the_context() -> None:
    with pytest.raises(ValueError, match="too large"):
        quantize(D("1e40"), "USD")


def test_to_decimal_names_the_field_in_its_error() -> None:
    with pytest.raises(TypeError, match="unit_amount"):
        to_decimal(1.5, "unit_amount")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- Money


def test_money_adds_and_subtracts_within_one_currency() -> None:
    total = Money(D("3100"), "USD") + Money(D("1700.00"), "USD") - Money(D("0.5"), "USD")
    assert total == Money(D("4799.50"), "USD")
    assert str(total) == "4799.50 USD"


def test_money_sums_from_zero() -> None:
    assert sum([Money(D("1"), "EUR"), Money(D("2.5"), "EUR")]) == Money(D("3.5"), "EUR")


@pytest.mark.parametrize("op", ["add", "sub", "lt", "ge"])
def test_money_never_combines_two_currencies(op: str) -> None:
    usd, eur = Money(D("1"), "USD"), Money(D("1"), "EUR")
    with pytest.raises(CurrencyMismatch, match="different currencies"):
        {"add": lambda: usd + eur, "sub": lambda: usd - eur, "lt": lambda: usd < eur, "ge": lambda: usd >= eur}[op]()
    assert issubclass(CurrencyMismatch, ValueError)


def test_money_compares_within_one_currency() -> None:
    assert Money(D("1"), "USD") < Money(D("1.01"), "USD")
    assert Money(D("2"), "USD") >= Money(D("2.00"), "USD")
    assert max(Money(D("5"), "JPY"), Money(D("7"), "JPY")) == Money(D("7"), "JPY")


def test_money_zero_quantized_and_str() -> None:
    assert Money.zero("KWD") == Money(D("0.000"), "KWD")
    assert str(Money.zero("JPY")) == "0 JPY"
    assert Money(D("0.125"), "USD").quantized().amount == D("0.13")
    assert str(Money(D("3100"), "USD")) == "3100.00 USD"
    assert -Money(D("2"), "USD") == Money(D("-2"), "USD")


def test_money_rejects_float_and_unknown_currency() -> None:
    with pytest.raises(TypeError):
        Money(0.1, "USD")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="Unknown currency"):
        Money(D("1"), "ABC")


def test_money_is_immutable() -> None:
    money = Money(D("1"), "USD")
    with pytest.raises(AttributeError):
        money.amount = D("2")  # type: ignore[misc]


# --------------------------------------------------------------------------- allocate / split


@pytest.mark.parametrize(
    ("total", "weights", "currency", "expected"),
    [
        ("100", ["1", "1", "1"], "USD", ["33.33", "33.33", "33.34"]),  # remainder to the last part
        ("3100", ["17", "28"], "USD", ["1171.11", "1928.89"]),
        ("10", ["1", "2", "3", "4"], "USD", ["1.00", "2.00", "3.00", "4.00"]),
        ("100", ["0", "0"], "USD", ["50.00", "50.00"]),  # zero weights -> equal split
        ("100", ["1", "0"], "USD", ["100.00", "0.00"]),
        ("1000", ["1", "1", "1"], "JPY", ["333", "333", "334"]),
        ("1", ["1", "1", "1"], "KWD", ["0.333", "0.333", "0.334"]),
        ("-100", ["1", "1", "1"], "USD", ["-33.33", "-33.33", "-33.34"]),  # credit notes
        ("99.999", ["1"], "USD", ["100.00"]),  # the total itself is quantized first
        # Half-up would give 0.01 + 0.01 and leave -0.01 last; running totals keep signs.
        ("0.01", ["1", "1", "0"], "USD", ["0.01", "0.00", "0.00"]),
    ],
)
def test_allocate_splits_proportionally_and_sums_exactly(
    total: str, weights: list[str], currency: str, expected: list[str]
) -> None:
    parts = allocate(total=D(total), weights=[D(w) for w in weights], currency=currency)
    assert parts == [D(e) for e in expected]
    assert sum(parts) == quantize(D(total), currency)


def test_allocate_rejects_bad_weights() -> None:
    with pytest.raises(ValueError, match="at least one weight"):
        allocate(total=D("1"), weights=[], currency="USD")
    with pytest.raises(ValueError, match="negative"):
        allocate(total=D("1"), weights=[D("1"), D("-1")], currency="USD")
    with pytest.raises(TypeError):
        allocate(total=D("1"), weights=[0.5, 0.5], currency="USD")  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("total", "n", "currency", "expected"),
    [
        ("10", 3, "USD", ["3.33", "3.33", "3.34"]),
        ("10", 1, "USD", ["10.00"]),
        ("100", 6, "JPY", ["17", "17", "17", "17", "17", "15"]),
        ("0", 2, "KWD", ["0.000", "0.000"]),
    ],
)
def test_split_evenly(total: str, n: int, currency: str, expected: list[str]) -> None:
    assert split_evenly(total=D(total), n=n, currency=currency) == [D(e) for e in expected]


@pytest.mark.parametrize("n", [0, -1, True, 2.0])
def test_split_evenly_needs_a_positive_count(n: object) -> None:
    with pytest.raises(ValueError, match="positive integer"):
        split_evenly(total=D("1"), n=n, currency="USD")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- format


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        (D("1700"), "USD", "1,700.00"),
        (D("1234567.891"), "EUR", "1,234,567.89"),
        (D("0.125"), "USD", "0.13"),
        (D("-1700.5"), "USD", "-1,700.50"),
        (D("1234567.5"), "JPY", "1,234,568"),
        (D("1234.5678"), "KWD", "1,234.568"),
        (D("0"), "GBP", "0.00"),
    ],
)
def test_format_money_for_display(amount: Decimal, currency: str, expected: str) -> None:
    assert format_money(amount, currency) == expected


# --------------------------------------------------------------------------- laws

currencies = st.sampled_from(["USD", "JPY", "KWD"])
amounts = st.decimals(min_value=-(10**9), max_value=10**9, places=4, allow_nan=False, allow_infinity=False)
weights = st.lists(
    st.decimals(min_value=0, max_value=10**6, places=3, allow_nan=False, allow_infinity=False),
    min_size=1,
    max_size=12,
)


@settings(deadline=None)
@given(total=amounts, weights=weights, currency=currencies)
def test_allocated_parts_are_quantized_same_signed_and_sum_to_the_total(
    total: Decimal, weights: list[Decimal], currency: str
) -> None:
    parts = allocate(total=total, weights=weights, currency=currency)
    expected_total = quantize(total, currency)
    assert len(parts) == len(weights)
    assert sum(parts) == expected_total
    for part in parts:
        assert part == quantize(part, currency)
        assert part.as_tuple().exponent == -minor_units(currency)
        assert part * expected_total >= 0  # never a part of the opposite sign


@settings(deadline=None)
@given(total=amounts, n=st.integers(min_value=1, max_value=50), currency=currencies)
def test_even_split_parts_sum_to_the_total_and_all_but_the_last_are_within_one_minor_unit(
    total: Decimal, n: int, currency: str
) -> None:
    parts = split_evenly(total=total, n=n, currency=currency)
    assert sum(parts) == quantize(total, currency)
    head = parts[:-1] or parts
    assert max(head) - min(head) <= D(10) ** -minor_units(currency)


@given(amount=amounts, currency=currencies)
def test_quantize_is_idempotent_and_within_half_a_minor_unit(amount: Decimal, currency: str) -> None:
    once = quantize(amount, currency)
    assert quantize(once, currency) == once
    assert abs(once - amount) <= D(10) ** -minor_units(currency) / 2
