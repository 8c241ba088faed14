"""AR aging and DSO of a fixture portfolio equal a hand calculation (DESIGN.md §4 definitions):
several currencies, partial payments, a credit note, a payment received after ``as_of``."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from billing.services.invoicing import credit_note_create
from receivables import figures
from receivables.selectors import ar_aging, ar_totals, dso_series, expected_cash
from receivables.services.ledger import payment_record
from receivables.tests.helpers import customer, issued_invoice

pytestmark = pytest.mark.usefixtures("in_tenant_a")
D = Decimal


@pytest.fixture
def portfolio():
    a = customer("USD", external_id="alpha")
    b = customer("EUR", external_id="beta")
    inv1 = issued_invoice(a, "1000.00", issued=date(2026, 1, 5))  # due 4 Feb
    inv2 = issued_invoice(a, "500.00", issued=date(2026, 2, 10))  # due 12 Mar
    inv3 = issued_invoice(a, "300.00", issued=date(2026, 3, 20))  # due 19 Apr
    inv4 = issued_invoice(b, "2000.00", issued=date(2025, 11, 15))  # due 15 Dec 2025
    inv5 = issued_invoice(b, "800.00", issued=date(2026, 3, 1))  # due 31 Mar
    payment_record(
        customer=a,
        amount=D("400"),
        currency="USD",
        received_on=date(2026, 2, 20),
        method="ach",
        allocations=[(inv1, D("400"))],
    )
    credit_note_create(invoice_id=inv2.pk, amount=D("100.00"), reason="Scope reduced", issue_date=date(2026, 3, 5))
    # Received after as_of (31 Mar): it must not count in March's aging.
    payment_record(
        customer=a,
        amount=D("300"),
        currency="USD",
        received_on=date(2026, 4, 5),
        method="card",
        allocations=[(inv3, D("300"))],
    )
    return {"inv1": inv1, "inv2": inv2, "inv3": inv3, "inv4": inv4, "inv5": inv5}


def test_aging_as_of_the_end_of_march_matches_the_hand_calculation(portfolio):
    aging = ar_aging(as_of=date(2026, 3, 31))
    eur, usd = aging.currencies  # sorted by currency code
    # USD: inv1 1000−400 = 600, 55 days past due → 31–60; inv2 500−100 = 400, 19 days → 1–30;
    # inv3 300 not due yet → current (its payment came on 5 April).
    assert usd.currency == "USD" and usd.total == D("1300.00")
    assert usd.buckets == {
        "current": D("300.00"),
        "1_30": D("400.00"),
        "31_60": D("600.00"),
        "61_90": D("0.00"),
        "over_90": D("0.00"),
    }
    # EUR: inv4 2000, 106 days → over 90; inv5 800 due on as_of → current.
    assert eur.total == D("2800.00")
    assert eur.buckets == {
        "current": D("800.00"),
        "1_30": D("0"),
        "31_60": D("0"),
        "61_90": D("0"),
        "over_90": D("2000.00"),
    }
    assert [(c.customer, c.total) for c in aging.customers["USD"]] == [("alpha", D("1300.00"))]


def test_the_currency_totals_alone_equal_the_agings_currency_rows(portfolio):
    for as_of in (date(2026, 2, 28), date(2026, 3, 31), date(2026, 4, 30)):
        assert ar_totals(as_of=as_of) == ar_aging(as_of=as_of).currencies


def test_aging_as_of_a_later_date_counts_the_later_payment(portfolio):
    (usd,) = [row for row in ar_aging(as_of=date(2026, 4, 30)).currencies if row.currency == "USD"]
    assert usd.total == D("1000.00")  # inv3 paid on 5 April


def test_dso_and_days_to_pay_match_the_hand_calculation(portfolio):
    rows = {(m.month, m.currency): m for m in dso_series(as_of=date(2026, 4, 30), months=2)}
    march_usd = rows[("2026-03", "USD")]
    # credit sales March = 300 (inv3) − 100 (credit note) = 200; DSO = 1300 / 200 × 31 = 201.5
    assert (march_usd.ar_end, march_usd.credit_sales, march_usd.days) == (D("1300.00"), D("200.00"), 31)
    assert march_usd.dso == D("201.5")
    # trailing 3 months: sales 1000 + 500 + 200 = 1700 over 90 days → 1300 / 1700 × 90 = 68.8
    assert march_usd.dso_trailing_3m == D("68.8")
    assert march_usd.average_days_to_pay is None  # nothing fully paid in March
    march_eur = rows[("2026-03", "EUR")]
    assert march_eur.dso == D("108.5")  # 2800 / 800 × 31
    april_usd = rows[("2026-04", "USD")]
    assert april_usd.average_days_to_pay == D("16.0")  # inv3 issued 20 Mar, paid 5 Apr
    assert april_usd.credit_sales == 0 and april_usd.dso is None


def test_expected_cash_shifts_by_the_customers_lateness():
    cust = customer()
    paid = issued_invoice(cust, "100.00", issued=date(2026, 1, 1), terms=10)  # due 11 Jan
    payment_record(
        customer=cust,
        amount=D("100"),
        currency="USD",
        received_on=date(2026, 1, 31),
        method="ach",
        allocations=[(paid, D("100"))],
    )  # 20 days late
    issued_invoice(cust, "50.00", issued=date(2026, 2, 1), terms=25)  # due 26 Feb → expected 18 Mar
    rows = expected_cash(today=date(2026, 2, 20))
    usd = next(r for r in rows if r["currency"] == "USD")
    # 18 Mar is 26 days after 20 Feb: within 30 days (and so within 60 and 90).
    assert (usd["next_30"], usd["next_60"], usd["next_90"]) == (D("50.00"), D("50.00"), D("50.00"))
    assert figures.horizon(expected=date(2026, 4, 1), today=date(2026, 2, 20)) == 60


@pytest.mark.parametrize(
    ("due", "bucket"),
    [
        (date(2026, 3, 31), "current"),
        (date(2026, 3, 30), "1_30"),
        (date(2026, 3, 1), "1_30"),
        (date(2026, 2, 28), "31_60"),
        (date(2026, 1, 30), "31_60"),
        (date(2026, 1, 29), "61_90"),
        (date(2025, 12, 30), "over_90"),
    ],
)
def test_bucket_edges(due, bucket):
    assert figures.bucket(due_date=due, as_of=date(2026, 3, 31)) == bucket


def test_ar_on_several_days_at_once_equals_each_days_totals(portfolio):
    """The DSO's month-ends in one query: the same totals as one aging per day, before, on and after
    every ledger row (a full payment drops an invoice out from its day; a write-off, a credit note)."""
    from receivables.selectors import ar_totals_at
    from receivables.services.ledger import invoice_write_off

    a = portfolio["inv1"].customer
    paid = issued_invoice(a, "250.00", issued=date(2026, 1, 20))
    payment_record(
        customer=a,
        amount=D("250"),
        currency="USD",
        received_on=date(2026, 3, 3),
        method="ach",
        allocations=[(paid, D("250"))],
    )
    invoice_write_off(invoice_id=portfolio["inv4"].pk, reason="Gone", amount=D("500.00"), on=date(2026, 2, 14))
    days = [
        date(2025, 11, 14),
        date(2025, 11, 15),
        date(2025, 12, 31),
        date(2026, 1, 31),
        date(2026, 2, 13),
        date(2026, 2, 14),
        date(2026, 2, 19),
        date(2026, 2, 20),
        date(2026, 3, 2),
        date(2026, 3, 3),
        date(2026, 3, 5),
        date(2026, 3, 31),
        date(2026, 4, 5),
        date(2026, 4, 30),
    ]
    at = ar_totals_at(dates=days)
    assert at == {day: ar_totals(as_of=day) for day in days}  # totals, buckets and invoice counts
    assert at[date(2026, 3, 2)] != at[date(2026, 3, 3)]  # the full payment counted on its day


def test_cash_collected_by_month_less_refunds(portfolio):
    from receivables.models import Payment
    from receivables.selectors import cash_collected
    from receivables.services.ledger import payment_refund

    april = Payment.objects.get(received_on=date(2026, 4, 5))
    payment_refund(payment_id=april.pk, amount=D("50"), reason="Overpaid", refunded_on=date(2026, 4, 10))
    assert cash_collected(as_of=date(2026, 4, 30), months=3) == [
        {"month": "2026-02", "currency": "USD", "amount": D("400.00")},
        {"month": "2026-04", "currency": "USD", "amount": D("250.00")},
    ]
    assert cash_collected(as_of=date(2026, 3, 31), months=1) == []
