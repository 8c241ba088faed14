"""A finding's page reads like a finance document: dates, money and quantities formatted, the
objects the evidence names linked (issue #16 item 15)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.urls import reverse

from billing.tests.builders import contract_with, hours, usage
from insights.models import LeakageFinding
from insights.services.leakage import leakage_scan
from revexos.accounts.models import Role
from tests.helpers import client_for

pytestmark = pytest.mark.usefixtures("in_tenant_a")
D = Decimal
TM = {"time_and_materials": True, "rates": [("engineer", "150.00")], "cap": None}


def page(tenant, finding) -> str:
    client = client_for(tenant, email=tenant.users[Role.FINANCE])
    response = client.get(reverse("leakage:detail", args=[finding.pk]))
    assert response.status_code == 200
    return response.content.decode()


def evidence_table(html: str) -> str:
    return html[html.index('id="evidence"') : html.index("</table>", html.index('id="evidence"'))]


def test_time_evidence_prints_dates_hours_and_money_not_raw_values(in_tenant_a):
    contract = contract_with(TM, start=date(2026, 1, 1))
    hours(contract, "7.5", date(2026, 5, 11), line_ref="L1")
    hours(contract, "5", date(2026, 5, 12), line_ref="L1")
    leakage_scan(as_of=date(2026, 6, 15))
    finding = LeakageFinding.objects.get(contract=contract, rule="L2")
    table = evidence_table(page(in_tenant_a, finding))
    assert "11 May 2026" in table and "2026-05-11" not in table
    assert "7.5 h" in table and "7.500000" not in table
    assert "1,125.00" in table and "150.00 /h" in table  # 7.5 h × 150.00
    assert "Amount (USD)" in table and "1 time entry" in table
    assert "12.5 h" in finding.title


def test_usage_quantities_carry_separators_and_the_metric(in_tenant_a):
    contract = contract_with({"usage": True, "unit_amount": D("0.001"), "frequency": "monthly"}, start=date(2026, 1, 1))
    usage(contract, "api_calls", "2400000", date(2026, 5, 20))
    leakage_scan(as_of=date(2026, 6, 15))
    finding = LeakageFinding.objects.get(contract=contract, rule="L3")
    html = page(in_tenant_a, finding)
    assert "2,400,000 api_calls" in evidence_table(html) and "2400000" not in html
    assert "2,400,000 api_calls" in finding.title


def test_a_renewal_finding_links_its_alert_and_formats_its_dates(in_tenant_a):
    from renewals.models import RenewalAlert

    retainer = {"kind": "recurring", "amount": D("5300.00"), "frequency": "monthly", "timing": "advance"}
    contract = contract_with(retainer, start=date(2026, 1, 1), end=date(2026, 7, 1))
    alert = RenewalAlert.objects.create(
        contract=contract,
        end_date=contract.end_date,
        raised_at=datetime(2026, 5, 1, tzinfo=UTC),
        raised_on=date(2026, 5, 1),
        window_days=60,
        window_start=contract.end_date - timedelta(days=60),
        notice_deadline=contract.end_date - timedelta(days=30),
        currency="USD",
        annual_recurring_value=D("63520"),
        remaining_value=D("1000"),
        status="open",
    )
    leakage_scan(as_of=date(2026, 6, 15))
    finding = LeakageFinding.objects.get(contract=contract, rule="L5")
    html = page(in_tenant_a, finding)
    table = evidence_table(html)
    assert f'href="{reverse("renewals:queue")}?status=all#alert-{alert.pk}"' in table
    assert "Renewal alert" in table and f"Renewal alert {alert.pk}<" not in table
    assert "1 Jun 2026" in table and "2026-06-01" not in html
    assert "63,600.00" in html and "63600.00" not in html


def test_an_off_rate_invoice_line_links_its_invoice(in_tenant_a):
    from insights.tests.conftest import issued_invoice

    retainer = {"kind": "recurring", "amount": D("1000.00"), "frequency": "monthly", "timing": "advance"}
    contract = contract_with(retainer, start=date(2026, 1, 1))
    invoice = issued_invoice(
        contract,
        {
            "kind": "recurring",
            "line_ref": "L1",
            "quantity": D("1"),
            "unit_amount": D("900.00"),
            "amount": D("900.00"),
            "period_start": date(2026, 5, 1),
            "period_end": date(2026, 5, 31),
        },
        billing_date=date(2026, 5, 1),
    )
    leakage_scan(as_of=date(2026, 6, 15))
    finding = LeakageFinding.objects.get(contract=contract, rule="L6")
    table = evidence_table(page(in_tenant_a, finding))
    assert f'href="{reverse("billing:invoice_detail", kwargs={"invoice_id": invoice.pk})}"' in table
    assert "1,000.00" in table and "900.00" in table and "under-billed" in table
