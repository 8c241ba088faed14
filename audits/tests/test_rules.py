"""The audit's comparison, rule by rule (pure, table-driven): owed against invoiced."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from audits.report import HistoryInvoice, dso, monthly, summary
from audits.rules import DiscountWindow, Invoiced, InvoiceTerms, Owed, audit_compare, expected_discount
from audits.services.process import default_as_of

D = Decimal


def owed(kind="recurring", amount="3000.00", start=date(2026, 2, 1), end=date(2026, 2, 28), key=None, **kw) -> Owed:
    return Owed(
        key=key or f"{kind}:1:L1:{start.isoformat()}",
        contract_id=1,
        contract_number="C-1",
        customer="Acme Ltd",
        kind=kind,
        line_ref="L1",
        description="Retainer",
        currency="GBP",
        amount=D(amount),
        period_start=start,
        period_end=end,
        on=start,
        **kw,
    )


def billed(key, gross="3000.00", net=None, invoice="INV-1", row=2, qty="1", unit=None, credit=False) -> Invoiced:
    gross = D(gross)
    return Invoiced(
        key=key,
        invoice=invoice,
        row=row,
        issue_date=date(2026, 2, 1),
        description="Retainer Feb 2026",
        currency="GBP",
        quantity=D(qty),
        unit_amount=D(unit) if unit else gross / D(qty),
        gross=gross,
        net=D(net) if net is not None else gross,
        credit_note=credit,
    )


def rules(findings):
    return [(f.rule, f.amount) for f in findings]


def test_a_period_invoiced_at_the_contract_rate_is_clean():
    o = owed()
    assert audit_compare(owed=[o], invoiced=[billed(o.key)]) == []


@pytest.mark.parametrize(
    ("kind", "rule"),
    [
        ("recurring", "L10"),
        ("fixed_fee", "L10"),
        ("time_and_materials", "L2"),
        ("overage", "L2"),
        ("usage", "L3"),
        ("milestone", "L1"),
        ("usage_minimum", "L9"),
    ],
)
def test_an_obligation_never_invoiced_is_found_by_its_kind(kind, rule):
    (finding,) = audit_compare(owed=[owed(kind=kind, amount="1800.00")], invoiced=[])
    assert (finding.rule, finding.amount) == (rule, D("1800.00"))
    assert finding.evidence[0]["source"] == "contract"


def test_invoiced_below_the_rate_is_the_difference():
    o = owed(amount="4500.00")
    (finding,) = audit_compare(owed=[o], invoiced=[billed(o.key, gross="4000.00")])
    assert rules([finding]) == [("L6", D("500.00"))]
    assert [r["source"] for r in finding.evidence] == ["contract", "invoice"]


def test_a_discount_deducted_inside_its_window_is_allowed_and_after_it_is_a_finding():
    window = DiscountWindow(
        contract_id=1, kind="percentage", value=D("10"), start=date(2025, 7, 1), end=date(2025, 12, 31)
    )
    inside = owed(amount="2000.00", start=date(2025, 12, 1), end=date(2025, 12, 31))
    after = owed(amount="2000.00", start=date(2026, 1, 1), end=date(2026, 1, 31))
    found = audit_compare(
        owed=[inside, after],
        invoiced=[
            billed(inside.key, gross="2000.00", net="1800.00"),
            billed(after.key, gross="2000.00", net="1800.00"),
        ],
        discounts=[window],
    )
    assert rules(found) == [("L4", D("200.00"))]
    assert found[0].period_start == date(2026, 1, 1) and "after it ended" in found[0].title


def test_a_period_straddling_the_discounts_end_allows_its_share():
    window = DiscountWindow(
        contract_id=1, kind="percentage", value=D("10"), start=date(2025, 7, 1), end=date(2026, 2, 14)
    )
    o = owed(amount="2800.00", start=date(2026, 2, 1), end=date(2026, 2, 28))
    assert expected_discount(o, [window]) == D("140.00")  # half of February covered
    (finding,) = audit_compare(owed=[o], invoiced=[billed(o.key, gross="2800.00", net="2520.00")], discounts=[window])
    assert rules([finding]) == [("L4", D("140.00"))]


def test_a_discount_only_down_to_the_contracts_cap_is_no_leak_and_below_the_rate_it_adds_to_l6():
    capped = owed(kind="time_and_materials", amount="1000.00", quantity=D("11"), unit_amount=D("150"))
    # 11 h at 150 list, "discounted" to the 1,000 cap the contract sets: what was owed was billed.
    to_cap = billed(capped.key, gross="1650.00", net="1000.00", qty="11", unit="150.00")
    assert audit_compare(owed=[capped], invoiced=[to_cap]) == []
    # Below the new rate and a lapsed discount on top: each counted once, together the whole gap.
    o = owed(amount="4500.00")
    found = audit_compare(owed=[o], invoiced=[billed(o.key, gross="4000.00", net="3600.00")])
    assert rules(found) == [("L6", D("500.00")), ("L4", D("400.00"))]


def test_a_milestone_billed_twice_is_the_excess_and_a_credit_note_cancels_it():
    o = owed(kind="milestone", amount="12000.00", start=None, end=None, key="milestone:1:L2")
    twice = [billed(o.key, gross="12000.00", invoice="INV-1"), billed(o.key, gross="12000.00", invoice="INV-2")]
    assert rules(audit_compare(owed=[o], invoiced=twice)) == [("A1", D("12000.00"))]
    credited = [*twice, billed(o.key, gross="12000.00", invoice="CN-1", credit=True)]
    assert audit_compare(owed=[o], invoiced=credited) == []


def test_hours_short_split_into_lower_rate_and_missing_hours():
    o = owed(kind="time_and_materials", amount="3000.00", quantity=D("20"), unit_amount=D("150"))
    # 16 h invoiced at 140: 16 × 10 below the rate card, 4 h never billed (600)
    found = audit_compare(owed=[o], invoiced=[billed(o.key, gross="2240.00", qty="16", unit="140.00")])
    assert rules(found) == [("L6", D("160.00")), ("L2", D("600.00"))]


def test_terms_and_po_that_differ_from_the_contract():
    base = {
        "contract_id": 1,
        "contract_number": "C-1",
        "customer": "Acme",
        "row": 2,
        "issue_date": date(2026, 1, 1),
        "currency": "GBP",
        "total": D("3600.00"),
    }
    ok = InvoiceTerms(
        invoice="I-1",
        payment_terms_days=30,
        reference="PO-77",
        contract_terms_days=30,
        contract_po="PO-77",
        po_required=True,
        **base,
    )
    late = InvoiceTerms(
        invoice="I-2",
        payment_terms_days=60,
        reference="PO-77",
        contract_terms_days=30,
        contract_po="PO-77",
        po_required=True,
        **base,
    )
    no_po = InvoiceTerms(
        invoice="I-3",
        payment_terms_days=30,
        reference="",
        contract_terms_days=30,
        contract_po="PO-77",
        po_required=True,
        **base,
    )
    found = audit_compare(owed=[], invoiced=[], invoice_terms=[ok, late, no_po])
    assert [(f.rule, f.key) for f in found] == [("L8", "terms:I-2"), ("L8", "terms:I-3")]
    assert "payment terms 60 days, contract says 30" in found[0].title and "PO PO-77 missing" in found[1].title


def test_findings_come_out_in_a_stable_order():
    items = [owed(start=date(2026, m, 1), end=date(2026, m, 28)) for m in (3, 1, 2)]
    found = audit_compare(owed=items, invoiced=[])
    assert [f.period_start.month for f in found] == [1, 2, 3]
    assert audit_compare(owed=list(reversed(items)), invoiced=[]) == found


def test_summary_keeps_leaks_apart_from_double_billing_and_terms():
    found = audit_compare(
        owed=[
            owed(amount="100.00"),
            owed(kind="milestone", amount="50.00", start=None, end=None, key="milestone:1:L9"),
        ],
        invoiced=[
            billed("milestone:1:L9", gross="50.00", invoice="A"),
            billed("milestone:1:L9", gross="50.00", invoice="B"),
        ],
    )
    result = summary(found)
    assert result["totals"] == [
        {"currency": "GBP", "leaked": "100.00", "billed_twice": "50.00", "terms_at_risk": "0.00"}
    ]
    assert [r["rule"] for r in result["by_rule"]] == ["L10", "A1"]
    assert result["by_customer"] == [
        {"customer": "Acme Ltd", "currency": "GBP", "count": 1, "amount": "100.00", "rules": ["L10"]}
    ]


def test_monthly_would_have_billed_against_billed():
    rows = monthly(
        owed=[(date(2026, 1, 1), "GBP", D("100")), (date(2026, 2, 1), "GBP", D("100"))],
        billed=[(date(2026, 1, 1), "GBP", D("100"))],
        start=date(2026, 1, 1),
        end=date(2026, 2, 28),
    )
    assert [(m["month"], m["owed"], m["billed"], m["gap"]) for m in rows["GBP"]] == [
        ("2026-01", "100.00", "100.00", "0.00"),
        ("2026-02", "100.00", "0.00", "100.00"),
    ]


def test_dso_from_paid_dates_per_month_and_average_days_to_pay():
    invoices = [
        HistoryInvoice("1", "A", "GBP", date(2026, 1, 1), date(2026, 1, 31), D("1000"), paid_on=date(2026, 1, 21)),
        HistoryInvoice("2", "A", "GBP", date(2026, 1, 15), date(2026, 2, 14), D("3000"), paid_on=date(2026, 2, 24)),
    ]
    result = dso(invoices, as_of=date(2026, 2, 28))["GBP"]
    assert result["method"] == "payment_dates"
    # January: 3000 open at the end of 31 days of 4000 credit sales → 23.3 days
    assert result["months"][0] == {
        "month": "2026-01",
        "label": "Jan 2026",
        "ar_end": "3000.00",
        "credit_sales": "4000.00",
        "days": 31,
        "dso": "23.3",
    }
    # (1000 × 20 + 3000 × 40) / 4000 = 35.0
    assert result["average_days_to_pay"] == "35.0"


def test_dso_without_paid_dates_is_a_snapshot_at_the_export_date():
    invoices = [
        HistoryInvoice("1", "A", "GBP", date(2026, 1, 10), date(2026, 2, 9), D("900"), amount_due=D("0")),
        HistoryInvoice("2", "A", "GBP", date(2026, 3, 10), date(2026, 4, 9), D("900"), amount_due=D("900")),
    ]
    result = dso(invoices, as_of=date(2026, 3, 31))["GBP"]
    assert (result["method"], result["dso"], result["ar_end"]) == ("export_snapshot", "45.0", "900.00")


@pytest.mark.parametrize(
    ("last", "expected"),
    [
        (date(2026, 3, 31), date(2026, 3, 31)),
        (date(2026, 4, 1), date(2026, 3, 31)),
        (date(2026, 2, 14), date(2026, 1, 31)),
        (None, None),
    ],
)
def test_the_audit_compares_up_to_the_last_full_month(last, expected):
    assert default_as_of(last) == expected
