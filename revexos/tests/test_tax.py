"""revexos/tax.py: the determination and the per-rate math, table-driven, no database."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from revexos import tax
from revexos.tax import Party, Rate, TaxableLine

D = Decimal
GB_RATES = [
    Rate(1, "UK VAT 20%", "GB", "standard", D("20"), date(2011, 1, 4)),
    Rate(2, "UK VAT 5%", "GB", "reduced", D("5"), date(2000, 1, 1)),
    Rate(3, "UK VAT 0%", "GB", "zero", D("0"), date(2000, 1, 1)),
]
DE_RATES = [Rate(10, "DE USt 19%", "DE", "standard", D("19"), date(2007, 1, 1))]
US_RATES = [Rate(20, "NY sales tax 8.875%", "US", "standard", D("8.875"), date(2020, 1, 1), region="NY")]
ALL = GB_RATES + DE_RATES + US_RATES
GB = Party("GB", tax_id="GB999999973")
DE = Party("DE", tax_id="DE136695976")
ON = date(2026, 3, 1)


def lines(*pairs):
    return [TaxableLine(key=i, category=cat, net=D(net)) for i, (cat, net) in enumerate(pairs)]


@pytest.mark.parametrize(
    ("entity", "customer", "treatment", "country", "mention_part"),
    [
        (GB, Party("GB"), tax.DOMESTIC, "GB", ""),
        (GB, Party("GB", tax_id="GB999999973"), tax.DOMESTIC, "GB", ""),
        (GB, Party(""), tax.DOMESTIC, "GB", ""),  # no country: taken as the entity's
        (GB, Party("IM"), tax.DOMESTIC, "IM", ""),  # the Isle of Man is in the UK VAT area
        (GB, Party("DE", tax_id="DE136695976"), tax.REVERSE_CHARGE, "GB", "Reverse charge"),
        (GB, Party("DE"), tax.OUTSIDE_SCOPE, "GB", "Outside the scope of UK VAT"),
        (GB, Party("US", tax_id="12-3456789"), tax.OUTSIDE_SCOPE, "GB", "place of supply is the United States"),
        (DE, Party("FR", tax_id="FR40303265045"), tax.REVERSE_CHARGE, "DE", "Article 196"),
        (DE, Party("FR"), tax.DOMESTIC, "DE", ""),  # EU consumer in another member state: the seller's rates
        (DE, Party("DE", tax_id="DE136695976"), tax.DOMESTIC, "DE", ""),
        (Party("US"), Party("US", region="NY"), tax.DOMESTIC, "US", ""),
        (Party("US"), Party("GB", tax_id="GB999999973"), tax.OUTSIDE_SCOPE, "US", "US sales tax"),
        (GB, Party("GB", exempt=True, exempt_note="charity, certificate C-1"), tax.EXEMPT_CUSTOMER, "GB", "C-1"),
        (GB, Party("DE", tax_id="DE136695976", exempt=True, exempt_note="x"), tax.EXEMPT_CUSTOMER, "GB", "Exempt"),
        (Party(""), Party("GB"), tax.NOT_COLLECTED, "", ""),
    ],
)
def test_determination(entity, customer, treatment, country, mention_part):
    d = tax.determine(entity=entity, customer=customer)
    assert (d.treatment, d.country) == (treatment, country)
    assert mention_part in d.mention


def test_region_taken_for_us_customers():
    d = tax.determine(entity=Party("US"), customer=Party("US", region="ny"))
    assert (d.country, d.region) == ("US", "NY")


@pytest.mark.parametrize(
    ("on", "expected"),
    [(date(2026, 3, 31), D("20")), (date(2026, 4, 1), D("22")), (date(2026, 5, 1), D("22")), (date(2010, 1, 1), None)],
)
def test_rate_in_force_is_the_latest_valid_from_on_or_before_the_issue_date(on, expected):
    rates = [*GB_RATES, Rate(9, "UK VAT 22%", "GB", "standard", D("22"), date(2026, 4, 1))]
    rate = tax.rate_in_force(rates, country="GB", region="", category="standard", on=on)
    assert (rate.percent if rate else None) == expected


def test_a_region_rate_wins_over_the_country_wide_one():
    rates = [
        Rate(1, "CA GST 5%", "CA", "standard", D("5"), date(2000, 1, 1)),
        Rate(2, "ON HST 13%", "CA", "standard", D("13"), date(2000, 1, 1), region="ON"),
    ]
    assert tax.rate_in_force(rates, country="CA", region="ON", category="standard", on=ON).percent == 13
    assert tax.rate_in_force(rates, country="CA", region="QC", category="standard", on=ON).percent == 5


@pytest.mark.parametrize(
    ("customer", "items", "treatment", "total", "summary"),
    [
        # 1,000.00 at GB standard → 200.00
        (Party("GB"), [("standard", "1000.00")], tax.DOMESTIC, "200.00", [("UK VAT 20%", "1000.00", "200.00")]),
        # two rates, each rounded once on its own subtotal
        (
            Party("GB"),
            [("standard", "900.00"), ("reduced", "450.00")],
            tax.DOMESTIC,
            "202.50",
            [("UK VAT 20%", "900.00", "180.00"), ("UK VAT 5%", "450.00", "22.50")],
        ),
        # per rate, never per line: ten lines of 0.05 at 20 % owe 0.10, not 10 × round(0.01)
        (Party("GB"), [("standard", "0.05")] * 10, tax.DOMESTIC, "0.10", [("UK VAT 20%", "0.50", "0.10")]),
        # half-up on the rate's sum: 0.03 × 5 % = 0.0015 → 0.00; 0.30 × 5 % = 0.015 → 0.02
        (Party("GB"), [("reduced", "0.30")], tax.DOMESTIC, "0.02", [("UK VAT 5%", "0.30", "0.02")]),
        (
            Party("GB"),
            [("zero", "100.00"), ("exempt", "50.00")],
            tax.DOMESTIC,
            "0.00",
            [("Exempt", "50.00", "0.00"), ("UK VAT 0%", "100.00", "0.00")],
        ),
        (
            Party("DE", tax_id="DE136695976"),
            [("standard", "1000.00")],
            tax.REVERSE_CHARGE,
            "0.00",
            [("Reverse charge", "1000.00", "0.00")],
        ),
        (Party("US"), [("standard", "1000.00")], tax.OUTSIDE_SCOPE, "0.00", [("Outside the scope", "1000.00", "0.00")]),
    ],
)
def test_invoice_tax_per_rate(customer, items, treatment, total, summary):
    result = tax.invoice_tax(entity=GB, customer=customer, lines=lines(*items), rates=ALL, on=ON, currency="GBP")
    assert result.treatment == treatment
    assert result.tax_total == D(total)
    assert [(t.name, str(t.taxable), str(t.amount)) for t in result.lines] == summary


def test_us_entity_collects_only_where_a_state_rate_exists():
    entity = Party("US")
    ny = tax.invoice_tax(
        entity=entity,
        customer=Party("US", region="NY"),
        lines=lines(("standard", "100.00")),
        rates=ALL,
        on=ON,
        currency="USD",
    )
    assert (ny.treatment, ny.tax_total) == (tax.DOMESTIC, D("8.88"))
    tx = tax.invoice_tax(
        entity=entity,
        customer=Party("US", region="TX"),
        lines=lines(("standard", "100.00")),
        rates=ALL,
        on=ON,
        currency="USD",
    )
    assert (tx.treatment, tx.tax_total) == (tax.NOT_COLLECTED, D("0"))
    assert "US-TX" in tx.mention


def test_a_missing_rate_names_country_and_category_and_taxes_nothing():
    result = tax.invoice_tax(
        entity=DE,
        customer=Party("DE"),
        lines=lines(("standard", "10"), ("reduced", "10")),
        rates=ALL,
        on=ON,
        currency="EUR",
    )
    assert result.treatment == tax.MISSING_RATE
    assert result.missing == (("DE", "", "reduced"),)
    assert "reduced" in result.problems[0] and "DE" in result.problems[0]


def test_a_country_with_no_rate_at_all_is_not_collected():
    result = tax.invoice_tax(
        entity=Party("SE"), customer=Party("SE"), lines=lines(("standard", "10")), rates=ALL, on=ON, currency="SEK"
    )
    assert result.treatment == tax.NOT_COLLECTED and result.tax_total == 0


def test_zero_decimal_currency_rounds_to_whole_units():
    rates = [Rate(1, "JP 10%", "JP", "standard", D("10"), date(2019, 10, 1))]
    result = tax.invoice_tax(
        entity=Party("JP"), customer=Party("JP"), lines=lines(("standard", "1235")), rates=rates, on=ON, currency="JPY"
    )
    assert result.tax_total == D("124")


# ----------------------------------------------------------------------------- credit notes

INVOICE_TAX = [
    {"name": "UK VAT 20%", "rate": "20", "taxable": "900.00", "amount": "180.00"},
    {"name": "UK VAT 5%", "rate": "5", "taxable": "450.00", "amount": "22.50"},
]


def test_a_credit_note_for_half_an_invoice_reverses_half_its_tax():
    rows = tax.credit_tax_reversal(
        tax_lines=INVOICE_TAX, invoice_total=D("1552.50"), credit_amount=D("776.25"), currency="GBP"
    )
    assert [(r["taxable"], r["amount"]) for r in rows] == [("450.00", "90.00"), ("225.00", "11.25")]


def test_credit_notes_in_parts_reverse_the_tax_to_the_cent():
    first = tax.credit_tax_reversal(
        tax_lines=INVOICE_TAX, invoice_total=D("1552.50"), credit_amount=D("100.00"), currency="GBP"
    )
    second = tax.credit_tax_reversal(
        tax_lines=INVOICE_TAX,
        invoice_total=D("1552.50"),
        credit_amount=D("1452.50"),
        already=first,
        final=True,
        currency="GBP",
    )
    for index, line in enumerate(INVOICE_TAX):
        assert D(first[index]["amount"]) + D(second[index]["amount"]) == D(line["amount"])
        assert D(first[index]["taxable"]) + D(second[index]["taxable"]) == D(line["taxable"])


@given(st.decimals(min_value=D("0.01"), max_value=D("1552.50"), places=2))
def test_a_partial_credit_never_reverses_more_tax_than_its_share_rounded(amount):
    rows = tax.credit_tax_reversal(
        tax_lines=INVOICE_TAX, invoice_total=D("1552.50"), credit_amount=amount, currency="GBP"
    )
    reversed_tax = sum(D(r["amount"]) for r in rows)
    exact = D("202.50") * amount / D("1552.50")
    assert abs(reversed_tax - exact) <= D("0.005")
    assert all(D(r["amount"]) <= D(line["amount"]) for r, line in zip(rows, INVOICE_TAX, strict=True))
    assert sum(D(r["taxable"]) for r in rows) + reversed_tax == amount  # net + tax = the credit, to the cent
