"""The one parsing layer (revexos/parsing.py): what it accepts and what it refuses, table-driven."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from django.http import Http404

from revexos.parsing import (
    BIGINT_MAX,
    DATE_MAX,
    DATE_MIN,
    clean_ref,
    id_or_404,
    parse_date,
    parse_decimal,
    parse_id,
    parse_int,
    ref_or_error,
)


@pytest.mark.parametrize(
    "value, expected",
    [
        ("42", 42),
        (" 42 ", 42),
        (42, 42),
        (str(BIGINT_MAX), BIGINT_MAX),
        (str(BIGINT_MAX + 1), None),
        ("1" * 20, None),
        ("9" * 4301, None),  # Python itself refuses to convert past 4,300 digits
        ("²", None),  # str.isdigit() is true for it
        ("٣", None),  # int() accepts Arabic-Indic digits
        ("1_000", None),
        ("0", None),
        ("-1", None),
        ("+1", None),
        ("1.0", None),
        ("4\x002", None),
        (True, None),
        (None, None),
        (4.0, None),
        (BIGINT_MAX + 1, None),
        ("", None),
    ],
)
def test_parse_id_takes_only_what_can_be_a_database_id(value, expected):
    assert parse_id(value) == expected


def test_an_id_that_cannot_exist_is_a_404():
    assert id_or_404("17", "invoice") == 17
    with pytest.raises(Http404, match="No invoice"):
        id_or_404("99999999999999999999", "invoice")


@pytest.mark.parametrize(
    "value, expected",
    [("C-1001", "C-1001"), ("  acme ", "acme"), (1001, "1001"), ("a\x00b", None), ("", None), ("x" * 201, None)],
)
def test_clean_ref_refuses_what_cannot_name_anything(value, expected):
    assert clean_ref(value) == expected


@pytest.mark.parametrize(
    "value, words",
    [
        ({"id": 1}, "as a string"),
        (True, "as a string"),
        ("a\x00b", "NUL"),
        ("x" * 201, "at most"),
        ("a\x01b", "control"),
    ],
)
def test_ref_or_error_says_what_is_wrong(value, words):
    with pytest.raises(ValueError, match=words):
        ref_or_error(value)


@pytest.mark.parametrize("value", ["1_000", "٣", "²", "1.0", "1e3", "", "ten", True, None, 1.5])
def test_parse_int_refuses_lax_coercions(value):
    with pytest.raises(ValueError):
        parse_int(value)


def test_parse_int_bounds():
    assert parse_int(" 12 ") == 12 and parse_int(-3) == -3
    with pytest.raises(ValueError, match="from 1 to 10"):
        parse_int("11", minimum=1, maximum=10)


@pytest.mark.parametrize(
    "value, expected", [("3100.00", Decimal("3100.00")), (3100, Decimal(3100)), (Decimal("0.5"), Decimal("0.5"))]
)
def test_parse_decimal_keeps_exact_values(value, expected):
    assert parse_decimal(value) == expected


@pytest.mark.parametrize(
    "value", ["1_000", "٣٫٥", "1e3", "NaN", "Infinity", 1.5, True, "9" * 40, Decimal("NaN"), Decimal("1E+40")]
)
def test_parse_decimal_refuses_floats_exponents_and_foreign_digits(value):
    with pytest.raises(ValueError):
        parse_decimal(value)


@pytest.mark.parametrize(
    "value, expected",
    [("2026-01-15", date(2026, 1, 15)), (DATE_MIN.isoformat(), DATE_MIN), (DATE_MAX.isoformat(), DATE_MAX)],
)
def test_parse_date_inside_the_window(value, expected):
    assert parse_date(value) == expected


@pytest.mark.parametrize(
    "value, words",
    [
        ("9999-01-01", "outside"),
        ("0001-01-01", "outside"),
        ("1989-12-31", "outside"),
        ("2101-01-01", "outside"),
        ("2026-02-30", "not a calendar date"),
        ("20260115", "YYYY-MM-DD"),
        ("٢٠٢٦-٠١-١٥", "YYYY-MM-DD"),
        (0, "YYYY-MM-DD"),
        (date(1, 1, 1), "outside"),
    ],
)
def test_parse_date_refuses_numbers_other_forms_and_dates_outside_the_window(value, words):
    with pytest.raises(ValueError, match=words):
        parse_date(value)
