"""Billing rules of revexos.pricing: worked numbers as tables, laws as property tests.

No database: pricing is pure, so these run without Django (``-p no:django``).
"""

from __future__ import annotations

import itertools
from datetime import date, datetime
from decimal import Decimal

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from revexos.money import minor_units, quantize
from revexos.pricing import (
    Period,
    Tier,
    TimeLine,
    UsageCharge,
    UsageSpec,
    add_months,
    aggregate,
    apply_minimum_commitment,
    billing_periods,
    full_period_for,
    price_graduated,
    price_graduated_percentage,
    price_overage_hours,
    price_package,
    price_per_unit,
    price_percentage,
    price_recurring,
    price_time_and_materials,
    price_usage,
    price_volume,
    prorate,
    split_over_periods,
    validate_tiers,
)

D = Decimal

# DESIGN.md §4: 0–100 at 1.00, 101–500 at 0.80, above 500 at 0.50.
DESIGN_TIERS = [
    Tier(up_to=D("100"), unit_amount=D("1.00")),
    Tier(up_to=D("500"), unit_amount=D("0.80")),
    Tier(up_to=None, unit_amount=D("0.50")),
]
# A 5.00 platform fee for the first 10 units, then 1.00/unit plus a 20.00 step fee.
FLAT_TIERS = [
    Tier(up_to=D("10"), unit_amount=D("0"), flat_amount=D("5.00")),
    Tier(up_to=None, unit_amount=D("1.00"), flat_amount=D("20.00")),
]
PERCENT_TIERS = [
    Tier(up_to=D("1000"), rate=D("1")),
    Tier(up_to=D("5000"), rate=D("0.5"), flat_amount=D("10.00")),
    Tier(up_to=None, rate=D("0.25")),
]


# --------------------------------------------------------------------------- tiers


def test_design_tiers_are_valid() -> None:
    assert validate_tiers(DESIGN_TIERS) == []
    assert validate_tiers([Tier(up_to=None, unit_amount=D("2"))]) == []


@pytest.mark.parametrize(
    ("tiers", "problem"),
    [
        ([], "At least one tier"),
        ([Tier(up_to=D("100")), Tier(up_to=D("50")), Tier(up_to=None)], "Tier 2: up_to 50 must be greater"),
        ([Tier(up_to=D("100")), Tier(up_to=D("100")), Tier(up_to=None)], "Tier 2: up_to 100 must be greater"),
        ([Tier(up_to=None), Tier(up_to=D("100")), Tier(up_to=None)], "Tier 1: only the last tier"),
        ([Tier(up_to=D("100")), Tier(up_to=D("200"))], "last tier must have no upper bound"),
        ([Tier(up_to=D("0")), Tier(up_to=None)], "Tier 1: up_to must be greater than 0"),
        ([Tier(up_to=None, unit_amount=D("-1"))], "Tier 1: unit_amount must not be negative"),
        ([Tier(up_to=D("5"), flat_amount=D("-1")), Tier(up_to=None)], "Tier 1: flat_amount must not be negative"),
        ([Tier(up_to=None, rate=D("-0.5"))], "Tier 1: rate must not be negative"),
    ],
)
def test_validate_tiers_reports_each_problem(tiers: list[Tier], problem: str) -> None:
    problems = validate_tiers(tiers)
    assert any(problem in p for p in problems), problems


def test_pricing_refuses_invalid_tiers() -> None:
    with pytest.raises(ValueError, match="Invalid tiers.*last tier"):
        price_graduated(quantity=D("5"), tiers=[Tier(up_to=D("10"))], currency="USD")


def test_tier_from_json_form() -> None:
    tier = Tier.from_dict({"up_to": "100", "unit_amount": "1.00", "flat_amount": "0"})
    assert tier == Tier(up_to=D("100"), unit_amount=D("1.00"))
    assert Tier.from_dict({"up_to": None, "rate": "0.5"}) == Tier(up_to=None, rate=D("0.5"))


# --------------------------------------------------------------------------- charge models


@pytest.mark.parametrize(
    ("quantity", "unit_amount", "currency", "expected"),
    [
        ("650", "0.10", "USD", "65.00"),
        ("0", "9.99", "USD", "0.00"),
        ("1.5", "0.125", "USD", "0.19"),  # 0.1875, rounded once
        ("3", "33.5", "JPY", "101"),  # 100.5 half-up
        ("3", "0.3335", "KWD", "1.001"),  # 1.0005 half-up
    ],
)
def test_per_unit(quantity: str, unit_amount: str, currency: str, expected: str) -> None:
    assert price_per_unit(quantity=D(quantity), unit_amount=D(unit_amount), currency=currency) == D(expected)


@pytest.mark.parametrize(
    ("tiers", "quantity", "expected"),
    [
        (DESIGN_TIERS, "650", "495.00"),  # 100×1.00 + 400×0.80 + 150×0.50
        (DESIGN_TIERS, "0", "0.00"),
        (DESIGN_TIERS, "100", "100.00"),
        (DESIGN_TIERS, "101", "100.80"),
        (DESIGN_TIERS, "500", "420.00"),
        (DESIGN_TIERS, "100.5", "100.40"),  # fractional units enter the next tier
        (FLAT_TIERS, "0", "0.00"),  # nothing entered, no flat fee
        (FLAT_TIERS, "5", "5.00"),
        (FLAT_TIERS, "10", "5.00"),
        (FLAT_TIERS, "10.5", "25.50"),  # 5.00 + 0.5×1.00 + 20.00
        (FLAT_TIERS, "15", "30.00"),
    ],
)
def test_graduated(tiers: list[Tier], quantity: str, expected: str) -> None:
    assert price_graduated(quantity=D(quantity), tiers=tiers, currency="USD") == D(expected)


def test_graduated_rounds_once_per_line_not_per_tier() -> None:
    tiers = [Tier(up_to=D("1"), unit_amount=D("0.005")), Tier(up_to=None, unit_amount=D("0.005"))]
    # Per tier 0.01 + 0.01 = 0.02; once: 0.010 -> 0.01.
    assert price_graduated(quantity=D("2"), tiers=tiers, currency="USD") == D("0.01")


@pytest.mark.parametrize(
    ("tiers", "quantity", "expected"),
    [
        (DESIGN_TIERS, "650", "325.00"),  # 650×0.50
        (DESIGN_TIERS, "0", "0.00"),
        (DESIGN_TIERS, "100", "100.00"),
        (DESIGN_TIERS, "101", "80.80"),
        (DESIGN_TIERS, "500", "400.00"),
        (FLAT_TIERS, "5", "5.00"),
        (FLAT_TIERS, "15", "35.00"),  # 15×1.00 + 20.00
    ],
)
def test_volume(tiers: list[Tier], quantity: str, expected: str) -> None:
    assert price_volume(quantity=D(quantity), tiers=tiers, currency="USD") == D(expected)


@pytest.mark.parametrize(
    ("quantity", "size", "amount", "free_units", "expected"),
    [
        ("250", "100", "10.00", "0", "30.00"),  # DESIGN.md §4: 3 packages
        ("0", "100", "10.00", "0", "0.00"),
        ("100", "100", "10.00", "0", "10.00"),
        ("101", "100", "10.00", "0", "20.00"),
        ("250", "100", "10.00", "60", "20.00"),  # 190 billable -> 2 packages
        ("250", "100", "10.00", "300", "0.00"),  # all free
        ("0.3", "0.1", "1.00", "0", "3.00"),  # exact decimal division
    ],
)
def test_package(quantity: str, size: str, amount: str, free_units: str, expected: str) -> None:
    result = price_package(
        quantity=D(quantity),
        package_size=D(size),
        amount=D(amount),
        free_units=D(free_units),
        currency="USD",
    )
    assert result == D(expected)


def test_package_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="package_size must be greater than 0"):
        price_package(quantity=D("1"), package_size=D("0"), amount=D("1"), currency="USD")


PCT = {"rate": D("2.9"), "fixed_amount": D("0.30")}


@pytest.mark.parametrize(
    ("transactions", "options", "expected"),
    [
        (["100"], PCT, "3.20"),  # 2.90 + 0.30
        (["100", "1"], PCT, "3.53"),  # 3.20 + 0.329, summed exactly, rounded once
        (["1"], {**PCT, "per_transaction_min": D("0.50")}, "0.50"),
        (["1000"], {**PCT, "per_transaction_max": D("5.00")}, "5.00"),
        (["100", "1", "1000"], {**PCT, "per_transaction_min": D("0.50"), "per_transaction_max": D("5")}, "8.70"),
        ([], PCT, "0.00"),
        (["0.05", "0.05", "0.05"], {"rate": D("10")}, "0.02"),  # 0.015 once, not 3×0.01
        # Free allowance: count only -> the first 2 are free.
        (["10", "10", "10", "10"], {"rate": D("10"), "free_units": D("2")}, "2.00"),
        # Amount only: running 10, 20 free; 30 exceeds 25 -> the 3rd and later are charged.
        (["10", "10", "10", "10"], {"rate": D("10"), "free_amount": D("25")}, "2.00"),
        # Both: the 2nd brings the sum to 20 > 15 -> the allowance ends there.
        (["10", "10", "10"], {"rate": D("10"), "free_units": D("3"), "free_amount": D("15")}, "2.00"),
        # The transaction that exceeds the amount allowance is charged in full.
        (["10", "50"], {"rate": D("10"), "free_amount": D("30")}, "5.00"),
        # Free transactions pay no fixed fee or minimum either.
        (
            ["10", "10"],
            {"rate": D("0"), "fixed_amount": D("1"), "per_transaction_min": D("2"), "free_units": D("1")},
            "2.00",
        ),
        # Zero limits mean "no allowance".
        (["10"], {"rate": D("10"), "free_units": D("0"), "free_amount": D("0")}, "1.00"),
    ],
)
def test_percentage(transactions: list[str], options: dict[str, Decimal], expected: str) -> None:
    result = price_percentage(transactions=[D(t) for t in transactions], currency="USD", **options)
    assert result == D(expected)


def test_percentage_min_above_max_is_refused() -> None:
    with pytest.raises(ValueError, match="per_transaction_min 5 must not be greater"):
        price_percentage(
            transactions=[D("1")],
            rate=D("1"),
            per_transaction_min=D("5"),
            per_transaction_max=D("1"),
            currency="USD",
        )


@pytest.mark.parametrize(
    ("total_amount", "expected"),
    [
        ("0", "0.00"),
        ("500", "5.00"),
        ("1000", "10.00"),
        ("1000.01", "20.00"),  # 10.00 + 0.00005 + entering tier 2's 10.00 flat
        ("6000", "42.50"),  # 10.00 + (20.00 + 10.00) + 2.50
    ],
)
def test_graduated_percentage(total_amount: str, expected: str) -> None:
    result = price_graduated_percentage(total_amount=D(total_amount), tiers=PERCENT_TIERS, currency="USD")
    assert result == D(expected)


@pytest.mark.parametrize(
    ("charge", "minimum", "expected"),
    [
        ("80", "100", ("80.00", "20.00")),
        ("120", "100", ("120.00", "0.00")),
        ("100", "100", ("100.00", "0.00")),
        ("0", "250.5", ("0.00", "250.50")),
        ("80", None, ("80.00", "0.00")),
    ],
)
def test_minimum_commitment_top_up(charge: str, minimum: str | None, expected: tuple[str, str]) -> None:
    result = apply_minimum_commitment(charge=D(charge), minimum=None if minimum is None else D(minimum), currency="USD")
    assert result == (D(expected[0]), D(expected[1]))


@pytest.mark.parametrize(
    "call",
    [
        lambda: price_per_unit(quantity=D("-1"), unit_amount=D("1"), currency="USD"),
        lambda: price_per_unit(quantity=D("1"), unit_amount=D("-1"), currency="USD"),
        lambda: price_graduated(quantity=D("-0.5"), tiers=DESIGN_TIERS, currency="USD"),
        lambda: price_volume(quantity=D("-1"), tiers=DESIGN_TIERS, currency="USD"),
        lambda: price_package(quantity=D("-1"), package_size=D("1"), amount=D("1"), currency="USD"),
        lambda: price_percentage(transactions=[D("-5")], rate=D("1"), currency="USD"),
        lambda: price_graduated_percentage(total_amount=D("-1"), tiers=PERCENT_TIERS, currency="USD"),
        lambda: price_overage_hours(hours_used=D("-1"), included_hours=D("0"), overage_rate=D("1"), currency="USD"),
        lambda: TimeLine(role="engineer", hours=D("-1"), rate=D("100")),
    ],
)
def test_negative_quantities_are_refused(call) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="must not be negative"):
        call()


@pytest.mark.parametrize(
    "call",
    [
        lambda: price_per_unit(quantity=1.5, unit_amount=D("1"), currency="USD"),
        lambda: price_graduated(quantity=D("1"), tiers=[Tier(up_to=None, unit_amount=0.5)], currency="USD"),
        lambda: Tier(up_to=100.0),
        lambda: price_percentage(transactions=[10.0], rate=D("1"), currency="USD"),
        lambda: prorate(
            amount=3100.0,
            period=Period(date(2026, 1, 1), date(2026, 1, 31)),
            full=Period(date(2026, 1, 1), date(2026, 1, 31)),
            currency="USD",
        ),
        lambda: TimeLine(role="engineer", hours=1.5, rate=D("100")),
        lambda: split_over_periods(total=10.0, periods=[Period(date(2026, 1, 1), date(2026, 1, 1))], currency="USD"),
        lambda: aggregate([D("1"), 2.5], "sum"),
    ],
)
def test_float_input_raises_type_error(call) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(TypeError, match="Decimal"):
        call()


# --------------------------------------------------------------------------- price_usage


@pytest.mark.parametrize(
    ("spec", "kwargs", "expected"),
    [
        (
            UsageSpec(charge_model="per_unit", unit_amount=D("0.10"), free_units=D("100")),
            {"quantity": D("250")},
            UsageCharge(D("15.00"), D("0.00"), D("150")),
        ),
        (
            UsageSpec(charge_model="graduated", tiers=tuple(DESIGN_TIERS)),
            {"quantity": D("650")},
            UsageCharge(D("495.00"), D("0.00"), D("650")),
        ),
        # Free units come off the bottom: 550 units priced from the first tier.
        (
            UsageSpec(charge_model="graduated", tiers=tuple(DESIGN_TIERS), free_units=D("100")),
            {"quantity": D("650")},
            UsageCharge(D("445.00"), D("0.00"), D("550")),
        ),
        (
            UsageSpec(charge_model="graduated", tiers=tuple(DESIGN_TIERS), minimum_commitment=D("500")),
            {"quantity": D("650")},
            UsageCharge(D("495.00"), D("5.00"), D("650")),
        ),
        (
            UsageSpec(charge_model="volume", tiers=tuple(DESIGN_TIERS)),
            {"quantity": D("650")},
            UsageCharge(D("325.00"), D("0.00"), D("650")),
        ),
        (
            UsageSpec(charge_model="volume", tiers=tuple(DESIGN_TIERS), free_units=D("1000")),
            {"quantity": D("650")},
            UsageCharge(D("0.00"), D("0.00"), D("0")),
        ),
        (
            UsageSpec(charge_model="package", package_size=D("100"), package_amount=D("10.00"), free_units=D("60")),
            {"quantity": D("250")},
            UsageCharge(D("20.00"), D("0.00"), D("190")),
        ),
        (
            UsageSpec(charge_model="percentage", rate=D("10"), free_units=D("1")),
            {"transactions": [D("10"), D("20"), D("30")]},
            UsageCharge(D("5.00"), D("0.00"), D("2")),
        ),
        (
            UsageSpec(charge_model="graduated_percentage", tiers=tuple(PERCENT_TIERS), minimum_commitment=D("50")),
            {"transactions": [D("2500"), D("3500")]},
            UsageCharge(D("42.50"), D("7.50"), D("6000")),
        ),
    ],
)
def test_price_usage_dispatches_by_charge_model(
    spec: UsageSpec, kwargs: dict[str, object], expected: UsageCharge
) -> None:
    charge = price_usage(spec.charge_model, spec=spec, currency="USD", **kwargs)  # type: ignore[arg-type]
    assert charge == expected
    assert charge.total == expected.amount + expected.minimum_top_up


def test_usage_spec_from_the_api_json() -> None:
    line = {
        "kind": "usage",
        "metric": "api_calls",
        "charge_model": "graduated",
        "free_units": "0",
        "minimum_commitment": "0",
        "tiers": [
            {"up_to": "100", "unit_amount": "1.00", "flat_amount": "0"},
            {"up_to": None, "unit_amount": "0.50", "flat_amount": "0"},
        ],
    }
    spec = UsageSpec.from_dict(line)
    assert price_usage("graduated", quantity=D("150"), spec=spec, currency="USD").amount == D("125.00")
    package = UsageSpec.from_dict({"charge_model": "package", "package_size": "100", "amount": "10.00"})
    assert package.package_amount == D("10.00")
    pct = UsageSpec.from_dict({"charge_model": "percentage", "rate": "2.9", "per_transaction_max": None})
    assert pct.per_transaction_max is None


@pytest.mark.parametrize(
    ("model", "spec", "kwargs", "message"),
    [
        ("tiered", UsageSpec(charge_model="per_unit"), {"quantity": D("1")}, "Unknown charge model"),
        ("volume", UsageSpec(charge_model="per_unit"), {"quantity": D("1")}, "does not match"),
        ("per_unit", UsageSpec(charge_model="per_unit"), {}, "needs a quantity"),
        ("percentage", UsageSpec(charge_model="percentage"), {"quantity": D("1")}, "needs the transactions"),
        ("package", UsageSpec(charge_model="package"), {"quantity": D("1")}, "needs a package_size"),
    ],
)
def test_price_usage_explains_bad_calls(model: str, spec: UsageSpec, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        price_usage(model, spec=spec, currency="USD", **kwargs)  # type: ignore[arg-type]


def test_usage_spec_rejects_unknown_model() -> None:
    with pytest.raises(ValueError, match="Unknown charge_model 'tiered'"):
        UsageSpec(charge_model="tiered")


# --------------------------------------------------------------------------- aggregation


@pytest.mark.parametrize(
    ("values", "how", "expected"),
    [
        ([D("1.5"), D("2"), "3"], "sum", "6.5"),
        ([], "sum", "0"),
        ([D("1"), D("1"), D("1")], "count", "3"),
        ([D("4"), D("9.5"), D("2")], "max", "9.5"),
        ([], "max", "0"),
        (["u1", "u2", "u1", None, "u3"], "unique_count", "3"),  # missing property not counted
    ],
)
def test_aggregate(values: list[object], how: str, expected: str) -> None:
    assert aggregate(values, how) == D(expected)


def test_aggregate_rejects_unknown_method() -> None:
    with pytest.raises(ValueError, match="Unknown aggregation 'avg'"):
        aggregate([D("1")], "avg")


# --------------------------------------------------------------------------- periods


def P(start: str, end: str) -> Period:
    return Period(date.fromisoformat(start), date.fromisoformat(end))


@pytest.mark.parametrize(
    ("start", "end", "days"),
    [
        ("2026-01-15", "2026-01-31", 17),
        ("2026-02-01", "2026-02-28", 28),
        ("2024-02-01", "2024-02-29", 29),
        ("2026-01-01", "2026-12-31", 365),
        ("2026-03-03", "2026-03-03", 1),
    ],
)
def test_period_days_are_inclusive(start: str, end: str, days: int) -> None:
    assert P(start, end).days == days


def test_period_refuses_reversed_dates_and_datetimes() -> None:
    with pytest.raises(ValueError, match="after its end"):
        P("2026-02-01", "2026-01-31")
    with pytest.raises(TypeError):
        Period(datetime(2026, 1, 1), date(2026, 1, 31))


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        ("2026-01-31", 1, "2026-02-28"),
        ("2024-01-31", 1, "2024-02-29"),
        ("2026-01-31", 2, "2026-03-31"),
        ("2024-02-29", 12, "2025-02-28"),
        ("2026-11-30", 3, "2027-02-28"),
        ("2026-03-31", -1, "2026-02-28"),
    ],
)
def test_add_months_clamps_to_month_end(day: str, months: int, expected: str) -> None:
    assert add_months(date.fromisoformat(day), months) == date.fromisoformat(expected)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        # Calendar monthly from 15 Jan: partial January, then calendar months.
        (
            {
                "contract_start": "2026-01-15",
                "contract_end": "2026-12-31",
                "frequency": "monthly",
                "anchor": "calendar",
                "until": "2026-03-01",
            },
            [("2026-01-15", "2026-01-31"), ("2026-02-01", "2026-02-28"), ("2026-03-01", "2026-03-31")],
        ),
        # Leap-year February.
        (
            {
                "contract_start": "2024-02-10",
                "contract_end": None,
                "frequency": "monthly",
                "anchor": "calendar",
                "until": "2024-03-01",
            },
            [("2024-02-10", "2024-02-29"), ("2024-03-01", "2024-03-31")],
        ),
        # Contract ending mid-month clips the last period.
        (
            {
                "contract_start": "2026-01-01",
                "contract_end": "2026-02-14",
                "frequency": "monthly",
                "anchor": "calendar",
                "until": "2026-12-31",
            },
            [("2026-01-01", "2026-01-31"), ("2026-02-01", "2026-02-14")],
        ),
        # Calendar quarters.
        (
            {
                "contract_start": "2026-02-10",
                "contract_end": "2026-08-20",
                "frequency": "quarterly",
                "anchor": "calendar",
                "until": "2026-12-31",
            },
            [("2026-02-10", "2026-03-31"), ("2026-04-01", "2026-06-30"), ("2026-07-01", "2026-08-20")],
        ),
        # Calendar years, open-ended, one that starts exactly on `until`.
        (
            {
                "contract_start": "2025-07-01",
                "contract_end": None,
                "frequency": "annual",
                "anchor": "calendar",
                "until": "2027-01-01",
            },
            [("2025-07-01", "2025-12-31"), ("2026-01-01", "2026-12-31"), ("2027-01-01", "2027-12-31")],
        ),
        # Anniversary monthly from the 31st: same day next month, clamped; end = next start - 1.
        (
            {
                "contract_start": "2026-01-31",
                "contract_end": None,
                "frequency": "monthly",
                "anchor": "anniversary",
                "until": "2026-05-31",
            },
            [
                ("2026-01-31", "2026-02-27"),
                ("2026-02-28", "2026-03-30"),
                ("2026-03-31", "2026-04-29"),
                ("2026-04-30", "2026-05-30"),
                ("2026-05-31", "2026-06-29"),
            ],
        ),
        # ... and in a leap year.
        (
            {
                "contract_start": "2024-01-31",
                "contract_end": None,
                "frequency": "monthly",
                "anchor": "anniversary",
                "until": "2024-02-29",
            },
            [("2024-01-31", "2024-02-28"), ("2024-02-29", "2024-03-30")],
        ),
        # Anniversary quarterly from the 15th, clipped at the contract end.
        (
            {
                "contract_start": "2026-01-15",
                "contract_end": "2026-09-30",
                "frequency": "quarterly",
                "anchor": "anniversary",
                "until": "2027-01-01",
            },
            [("2026-01-15", "2026-04-14"), ("2026-04-15", "2026-07-14"), ("2026-07-15", "2026-09-30")],
        ),
        # Anniversary annual from 29 Feb.
        (
            {
                "contract_start": "2024-02-29",
                "contract_end": None,
                "frequency": "annual",
                "anchor": "anniversary",
                "until": "2025-03-01",
            },
            [("2024-02-29", "2025-02-27"), ("2025-02-28", "2026-02-27")],
        ),
        # Nothing has started yet.
        (
            {
                "contract_start": "2026-05-01",
                "contract_end": None,
                "frequency": "monthly",
                "anchor": "calendar",
                "until": "2026-04-30",
            },
            [],
        ),
    ],
)
def test_billing_periods(kwargs: dict[str, str | None], expected: list[tuple[str, str]]) -> None:
    args = {
        k: date.fromisoformat(v) if k in {"contract_start", "contract_end", "until"} and v else v
        for k, v in kwargs.items()
    }
    assert billing_periods(**args) == [P(s, e) for s, e in expected]  # type: ignore[arg-type]


def test_billing_periods_explain_bad_schedules() -> None:
    common = {"contract_start": date(2026, 1, 1), "contract_end": None, "until": date(2026, 2, 1)}
    with pytest.raises(ValueError, match="Unknown frequency 'weekly'"):
        billing_periods(frequency="weekly", anchor="calendar", **common)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="Unknown billing anchor 'fiscal'"):
        billing_periods(frequency="monthly", anchor="fiscal", **common)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="before its start"):
        billing_periods(
            contract_start=date(2026, 2, 1),
            contract_end=date(2026, 1, 1),
            frequency="monthly",
            anchor="calendar",
            until=date(2026, 3, 1),
        )


@pytest.mark.parametrize(
    ("period_start", "frequency", "anchor", "contract_start", "expected"),
    [
        ("2026-01-15", "monthly", "calendar", "2026-01-15", ("2026-01-01", "2026-01-31")),
        ("2024-02-10", "monthly", "calendar", "2024-02-10", ("2024-02-01", "2024-02-29")),
        ("2026-05-20", "quarterly", "calendar", "2026-05-20", ("2026-04-01", "2026-06-30")),
        ("2026-12-31", "quarterly", "calendar", "2026-01-01", ("2026-10-01", "2026-12-31")),
        ("2025-07-01", "annual", "calendar", "2025-07-01", ("2025-01-01", "2025-12-31")),
        ("2026-02-28", "monthly", "anniversary", "2026-01-31", ("2026-02-28", "2026-03-30")),
        ("2026-03-10", "monthly", "anniversary", "2026-01-31", ("2026-02-28", "2026-03-30")),
        ("2026-09-01", "quarterly", "anniversary", "2026-01-15", ("2026-07-15", "2026-10-14")),
        ("2027-02-01", "annual", "anniversary", "2025-03-01", ("2026-03-01", "2027-02-28")),
    ],
)
def test_full_period_for(
    period_start: str, frequency: str, anchor: str, contract_start: str, expected: tuple[str, str]
) -> None:
    full = full_period_for(
        period_start=date.fromisoformat(period_start),
        frequency=frequency,
        anchor=anchor,
        contract_start=date.fromisoformat(contract_start),
    )
    assert full == P(*expected)


# --------------------------------------------------------------------------- proration & recurring


@pytest.mark.parametrize(
    ("amount", "period", "full", "currency", "expected"),
    [
        ("3100.00", ("2026-01-15", "2026-01-31"), ("2026-01-01", "2026-01-31"), "USD", "1700.00"),  # DESIGN §4
        ("3100.00", ("2026-02-01", "2026-02-28"), ("2026-02-01", "2026-02-28"), "USD", "3100.00"),
        ("3100.00", ("2026-02-15", "2026-02-28"), ("2026-02-01", "2026-02-28"), "USD", "1550.00"),
        ("3100.00", ("2024-02-15", "2024-02-29"), ("2024-02-01", "2024-02-29"), "USD", "1603.45"),  # 15/29
        ("100000", ("2026-01-15", "2026-01-31"), ("2026-01-01", "2026-01-31"), "JPY", "54839"),
        ("1.000", ("2026-01-01", "2026-01-10"), ("2026-01-01", "2026-01-31"), "KWD", "0.323"),
        (
            "12000",
            ("2026-02-10", "2026-03-31"),
            ("2026-01-01", "2026-03-31"),
            "USD",
            "6666.67",
        ),  # 50/90 of a calendar quarter
    ],
)
def test_prorate_by_days(
    amount: str, period: tuple[str, str], full: tuple[str, str], currency: str, expected: str
) -> None:
    assert prorate(amount=D(amount), period=P(*period), full=P(*full), currency=currency) == D(expected)
    assert price_recurring(amount=D(amount), period=P(*period), full_period=P(*full), currency=currency) == D(expected)


def test_prorate_refuses_a_period_outside_its_full_period() -> None:
    with pytest.raises(ValueError, match="inside its full period"):
        prorate(amount=D("1"), period=P("2026-01-15", "2026-02-02"), full=P("2026-01-01", "2026-01-31"), currency="USD")


def test_retainer_first_invoice_from_the_schedule() -> None:
    first = billing_periods(
        contract_start=date(2026, 1, 15),
        contract_end=date(2026, 12, 31),
        frequency="monthly",
        anchor="calendar",
        until=date(2026, 1, 15),
    )[0]
    full = full_period_for(
        period_start=first.start, frequency="monthly", anchor="calendar", contract_start=date(2026, 1, 15)
    )
    assert price_recurring(amount=D("3100.00"), period=first, full_period=full, currency="USD") == D("1700.00")


@pytest.mark.parametrize(
    ("used", "included", "rate", "expected"),
    [
        ("26.5", "20", "150.00", ("6.5", "975.00")),
        ("10", "20", "150.00", ("0", "0.00")),
        ("20", "20", "150.00", ("0", "0.00")),
        ("20.333", "20", "150.00", ("0.333", "49.95")),
    ],
)
def test_overage_hours(used: str, included: str, rate: str, expected: tuple[str, str]) -> None:
    result = price_overage_hours(hours_used=D(used), included_hours=D(included), overage_rate=D(rate), currency="USD")
    assert result == (D(expected[0]), D(expected[1]))


# --------------------------------------------------------------------------- time & materials

TM_LINES = [
    TimeLine(role="engineer", hours=D("10"), rate=D("150.00")),
    TimeLine(role="designer", hours=D("2.5"), rate=D("120.50")),
    TimeLine(role="engineer", hours=D("5"), rate=D("150.00")),
]


@pytest.mark.parametrize(
    ("cap_remaining", "capped", "reduction"),
    [
        (None, "2551.25", "0.00"),
        (D("20000"), "2551.25", "0.00"),
        (D("2000"), "2000.00", "551.25"),
        (D("0"), "0.00", "2551.25"),
        (D("-50"), "0.00", "2551.25"),  # cap already overrun: nothing more billable
    ],
)
def test_time_and_materials_under_a_cap(cap_remaining: Decimal | None, capped: str, reduction: str) -> None:
    charge = price_time_and_materials(TM_LINES, cap_remaining=cap_remaining, currency="USD")
    assert [(line.role, line.hours, line.amount) for line in charge.lines] == [
        ("engineer", D("15"), D("2250.00")),
        ("designer", D("2.5"), D("301.25")),
    ]
    assert charge.subtotal == D("2551.25")
    assert charge.capped_amount == D(capped)
    assert charge.cap_reduction == D(reduction)


def test_time_and_materials_rounds_per_role_line_and_keeps_two_rates_apart() -> None:
    charge = price_time_and_materials(
        [
            TimeLine(role="engineer", hours=D("1.5"), rate=D("33.333")),
            TimeLine(role="engineer", hours=D("1"), rate=D("40.00")),
        ],
        cap_remaining=None,
        currency="USD",
    )
    assert [line.amount for line in charge.lines] == [D("50.00"), D("40.00")]  # 49.9995 -> 50.00
    assert charge.subtotal == D("90.00")


# --------------------------------------------------------------------------- splitting


def test_split_over_periods_by_days() -> None:
    parts = split_over_periods(
        total=D("3100"), periods=[P("2026-01-15", "2026-01-31"), P("2026-02-01", "2026-02-28")], currency="USD"
    )
    assert parts == [D("1171.11"), D("1928.89")]


def test_split_over_no_periods_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one period"):
        split_over_periods(total=D("1"), periods=[], currency="USD")


# --------------------------------------------------------------------------- laws

currencies = st.sampled_from(["USD", "JPY", "KWD"])
money = st.decimals(min_value=0, max_value=10_000, places=4, allow_nan=False, allow_infinity=False)
quantities = st.decimals(min_value=0, max_value=100_000, places=3, allow_nan=False, allow_infinity=False)
days = st.dates(min_value=date(2000, 1, 1), max_value=date(2040, 12, 31))


@st.composite
def tier_lists(draw: st.DrawFn, amount_field: str = "unit_amount") -> list[Tier]:
    bounds = sorted(
        draw(
            st.lists(
                st.decimals(min_value=D("0.1"), max_value=50_000, places=1, allow_nan=False, allow_infinity=False),
                max_size=4,
                unique=True,
            )
        )
    )
    ups: list[Decimal | None] = [*bounds, None]
    return [Tier(up_to=up, flat_amount=draw(money), **{amount_field: draw(money)}) for up in ups]


@settings(deadline=None)
@given(tiers=tier_lists(), q1=quantities, q2=quantities, currency=currencies)
def test_graduated_price_never_decreases_as_quantity_grows(
    tiers: list[Tier], q1: Decimal, q2: Decimal, currency: str
) -> None:
    low, high = sorted((q1, q2))
    cheap = price_graduated(quantity=low, tiers=tiers, currency=currency)
    dear = price_graduated(quantity=high, tiers=tiers, currency=currency)
    assert D(0) <= cheap <= dear


@settings(deadline=None)
@given(tiers=tier_lists(), quantity=quantities, currency=currencies)
def test_tiered_prices_are_non_negative_and_quantized(tiers: list[Tier], quantity: Decimal, currency: str) -> None:
    for price in (
        price_volume(quantity=quantity, tiers=tiers, currency=currency),
        price_graduated(quantity=quantity, tiers=tiers, currency=currency),
    ):
        assert price >= 0
        assert price.as_tuple().exponent == -minor_units(currency)


@settings(deadline=None)
@given(tiers=tier_lists("rate"), total=quantities, currency=currencies)
def test_graduated_percentage_is_non_negative(tiers: list[Tier], total: Decimal, currency: str) -> None:
    assert price_graduated_percentage(total_amount=total, tiers=tiers, currency=currency) >= 0


@settings(deadline=None)
@given(
    transactions=st.lists(money, max_size=20),
    rate=money,
    fixed=money,
    low=st.none() | money,
    high=st.none() | money,
    free_units=st.none() | st.integers(0, 10).map(D),
    free_amount=st.none() | money,
    currency=currencies,
)
def test_percentage_is_non_negative_and_within_per_transaction_bounds(
    transactions: list[Decimal],
    rate: Decimal,
    fixed: Decimal,
    low: Decimal | None,
    high: Decimal | None,
    free_units: Decimal | None,
    free_amount: Decimal | None,
    currency: str,
) -> None:
    assume(low is None or high is None or low <= high)
    price = price_percentage(
        transactions=transactions,
        rate=rate,
        fixed_amount=fixed,
        per_transaction_min=low,
        per_transaction_max=high,
        free_units=free_units,
        free_amount=free_amount,
        currency=currency,
    )
    assert price >= 0
    if high is not None:
        assert price <= quantize(high * len(transactions), currency)


@settings(deadline=None)
@given(
    quantity=quantities,
    unit_amount=money,
    size=st.decimals(min_value=D("0.1"), max_value=1000, places=1),
    free=quantities,
    currency=currencies,
)
def test_per_unit_and_package_are_non_negative(
    quantity: Decimal, unit_amount: Decimal, size: Decimal, free: Decimal, currency: str
) -> None:
    assert price_per_unit(quantity=quantity, unit_amount=unit_amount, currency=currency) >= 0
    assert (
        price_package(quantity=quantity, package_size=size, amount=unit_amount, free_units=free, currency=currency) >= 0
    )


@settings(deadline=None)
@given(
    start=days,
    frequency=st.sampled_from(["monthly", "quarterly", "annual"]),
    anchor=st.sampled_from(["calendar", "anniversary"]),
    length=st.integers(0, 800),
    amount=money,
    currency=currencies,
)
def test_periods_tile_the_contract_and_full_periods_prorate_to_the_amount(
    start: date, frequency: str, anchor: str, length: int, amount: Decimal, currency: str
) -> None:
    end = date.fromordinal(start.toordinal() + length)
    periods = billing_periods(contract_start=start, contract_end=end, frequency=frequency, anchor=anchor, until=end)
    assert periods[0].start == start and periods[-1].end == end
    for before, after in itertools.pairwise(periods):
        assert date.fromordinal(before.end.toordinal() + 1) == after.start
    for period in periods:
        full = full_period_for(period_start=period.start, frequency=frequency, anchor=anchor, contract_start=start)
        assert full.start <= period.start and period.end <= full.end
        assert prorate(amount=amount, period=full, full=full, currency=currency) == quantize(amount, currency)
        assert 0 <= prorate(amount=amount, period=period, full=full, currency=currency) <= quantize(amount, currency)
    parts = split_over_periods(total=amount, periods=periods, currency=currency)
    assert sum(parts) == quantize(amount, currency)
    assert all(part == quantize(part, currency) and part >= 0 for part in parts)
