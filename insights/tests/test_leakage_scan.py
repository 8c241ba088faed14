"""The leakage scan's lifecycle, decisions and permissions, the API and the cycle step."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from billing.models import BillingReviewTask
from billing.services.triggers import contract_bill_due
from billing.tests.builders import contract_with, hours
from insights.models import LeakageFinding
from insights.services.leakage import (
    leakage_finding_acknowledge,
    leakage_finding_dismiss,
    leakage_finding_resolve,
    leakage_scan,
)
from revexos.accounts.models import Role
from tests.helpers import client_for

D = Decimal
AS_OF = date(2026, 6, 15)
RETAINER = {"kind": "recurring", "amount": D("1000.00"), "frequency": "monthly", "timing": "advance"}
TM = {"time_and_materials": True, "rates": [("engineer", "150.00")], "cap": None}


@pytest.fixture
def leaking(in_tenant_a):
    """A retainer never billed (L10 for May and June) and unbilled May hours (L2)."""
    contract = contract_with(RETAINER, TM, start=date(2026, 5, 1))
    hours(contract, "8", date(2026, 5, 12), line_ref="L2")
    return contract


def scan(**kwargs):
    return leakage_scan(as_of=AS_OF, **kwargs)


def test_rescans_do_not_duplicate_findings_or_review_tasks(leaking):
    first = scan()
    assert (first.created, first.review_tasks_opened) == (3, 3)
    ids = set(LeakageFinding.objects.filter(contract=leaking).values_list("pk", flat=True))
    second = scan()
    assert (second.created, second.updated, second.resolved, second.review_tasks_opened) == (0, 3, 0, 0)
    assert set(LeakageFinding.objects.filter(contract=leaking).values_list("pk", flat=True)) == ids
    tasks = BillingReviewTask.objects.filter(contract=leaking, kind="leakage")
    assert tasks.count() == 3
    assert set(LeakageFinding.objects.filter(contract=leaking).values_list("review_task_id", flat=True)) == set(
        tasks.values_list("pk", flat=True)
    )


def test_a_rescan_refreshes_amount_evidence_and_last_seen(leaking):
    scan()
    hours(leaking, "2", date(2026, 5, 13), line_ref="L2")
    leakage_scan(as_of=date(2026, 6, 16))
    finding = LeakageFinding.objects.get(contract=leaking, rule="L2")
    assert (
        finding.amount == D("1500.00") and finding.last_seen_on == date(2026, 6, 16) and finding.first_seen_on == AS_OF
    )
    assert len(finding.evidence["rows"]) == 2


def test_dismissed_findings_stay_dismissed_and_keep_their_reason(leaking):
    scan()
    finding = LeakageFinding.objects.get(contract=leaking, rule="L2")
    leakage_finding_dismiss(finding_id=finding.pk, reason="Goodwill: hours agreed free of charge")
    scan()
    contract_bill_due(contract_id=leaking.pk, as_of=AS_OF)  # even when the cause goes away
    scan()
    finding.refresh_from_db()
    assert finding.status == "dismissed" and finding.status_note.startswith("Goodwill")
    assert finding.review_task.status == "resolved"


def test_dismissing_needs_a_reason(leaking):
    scan()
    finding = LeakageFinding.objects.filter(contract=leaking).first()
    with pytest.raises(ValidationError) as exc:
        leakage_finding_dismiss(finding_id=finding.pk, reason="  ")
    assert "reason" in exc.value.message_dict


def test_acknowledged_findings_resolve_when_fixed(leaking):
    scan()
    finding = LeakageFinding.objects.get(contract=leaking, rule="L2")
    leakage_finding_acknowledge(finding_id=finding.pk, note="Chasing the PM")
    contract_bill_due(contract_id=leaking.pk, as_of=AS_OF)
    result = scan()
    finding.refresh_from_db()
    assert result.resolved == 3 and finding.status == "resolved" and finding.review_task.status == "resolved"


def test_a_manual_resolve_without_a_fix_is_reopened_by_the_next_scan(leaking):
    scan()
    finding = LeakageFinding.objects.get(contract=leaking, rule="L2")
    leakage_finding_resolve(finding_id=finding.pk, note="billed by hand")
    assert LeakageFinding.objects.get(pk=finding.pk).status == "resolved"
    result = scan()
    finding.refresh_from_db()
    assert result.reopened == 1 and finding.status == "open" and finding.review_task.status == "open"


def test_draft_contracts_are_not_scanned(in_tenant_a):
    draft = contract_with(RETAINER, start=date(2026, 5, 1), status="draft")
    scan()
    assert not LeakageFinding.objects.filter(contract=draft).exists()


def test_a_scan_narrowed_to_contracts_resolves_only_theirs(leaking):
    other = contract_with(RETAINER, start=date(2026, 6, 1))
    scan()
    contract_bill_due(contract_id=other.pk, as_of=AS_OF)
    scan(contract_ids=[leaking.pk])
    assert LeakageFinding.objects.get(contract=other).status == "open"
    scan(contract_ids=[other.pk])
    assert LeakageFinding.objects.get(contract=other).status == "resolved"
    assert LeakageFinding.objects.filter(contract=leaking, status="open").count() == 3


# --------------------------------------------------------------------------- the cycle and the API


@pytest.fixture
def api(in_tenant_a):
    return Client(HTTP_HOST=in_tenant_a.host, HTTP_AUTHORIZATION=f"Bearer {in_tenant_a.api_key}")


def test_runs_with_only_leakage_scans(api, leaking):
    response = api.post("/api/v1/runs", {"as_of": "2026-06-15", "only": ["leakage"]}, content_type="application/json")
    assert response.status_code in (200, 201), response.content
    body = response.json()
    summary = body.get("summary", body)
    assert summary["leakage"]["created"] == 3
    assert not leaking.invoices.exists()  # only the scan ran


def test_api_lists_findings_with_filters_and_money_as_strings(api, leaking):
    scan()
    body = api.get("/api/v1/leakage-findings?rule=L2").json()
    [item] = [i for i in body["items"] if i["contract"] == leaking.number]
    assert item["amount"] == "1200.00" and item["currency"] == "USD" and item["status"] == "open"
    assert item["evidence"]["rows"][0]["hours"] == "8" and item["review_task"]
    by_contract = api.get(f"/api/v1/leakage-findings?contract={leaking.number}").json()
    assert by_contract["count"] == 3 and {i["rule"] for i in by_contract["items"]} == {"L2", "L10"}
    assert api.get(f"/api/v1/leakage-findings?contract={leaking.number}&status=dismissed").json()["count"] == 0


def test_api_names_bad_filters_and_needs_the_tenants_key(api, in_tenant_a, tenant_b):
    response = api.get("/api/v1/leakage-findings?rule=L11&status=gone")
    assert response.status_code == 422
    assert "rule" in response.json()["error"]["fields"]
    assert Client(HTTP_HOST=in_tenant_a.host).get("/api/v1/leakage-findings").status_code == 401
    other = Client(HTTP_HOST=in_tenant_a.host, HTTP_AUTHORIZATION=f"Bearer {tenant_b.api_key}")
    assert other.get("/api/v1/leakage-findings").status_code == 401


# --------------------------------------------------------------------------- pages and permissions


@pytest.mark.parametrize("role", [Role.ADMIN, Role.FINANCE, Role.ACCOUNT_MANAGER, Role.VIEWER])
def test_everyone_with_insights_reads_the_findings(in_tenant_a, leaking, role):
    scan()
    client = client_for(in_tenant_a, email=in_tenant_a.users[role])
    finding = LeakageFinding.objects.get(contract=leaking, rule="L2")
    page = client.get("/insights/leakage/").content.decode()
    assert leaking.number in page
    assert ("Scan now" in page) == (role in (Role.ADMIN, Role.FINANCE))
    detail = client.get(f"/insights/leakage/{finding.pk}/")
    assert detail.status_code == 200 and "Evidence" in detail.content.decode()
    assert ("Dismiss" in detail.content.decode()) == (role in (Role.ADMIN, Role.FINANCE))
    assert client.get("/insights/leakage/rules/").status_code == 200


@pytest.mark.parametrize("role", [Role.ACCOUNT_MANAGER, Role.VIEWER])
def test_only_finance_and_admins_act_on_findings(in_tenant_a, leaking, role):
    scan()
    finding = LeakageFinding.objects.get(contract=leaking, rule="L2")
    client = client_for(in_tenant_a, email=in_tenant_a.users[role])
    for action, data in (("acknowledge", {}), ("resolve", {"note": "x"}), ("dismiss", {"reason": "x"})):
        assert client.post(f"/insights/leakage/{finding.pk}/{action}/", data).status_code == 403
    assert client.post("/insights/leakage/scan/").status_code == 403
    finding.refresh_from_db()
    assert finding.status == "open"


def test_finance_dismisses_with_a_reason_through_htmx(in_tenant_a, leaking):
    scan()
    finding = LeakageFinding.objects.get(contract=leaking, rule="L2")
    finance = client_for(in_tenant_a, email=in_tenant_a.users[Role.FINANCE])
    empty = finance.post(
        f"/insights/leakage/{finding.pk}/dismiss/", {"reason": ""}, HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "Say why this is not a leak" in empty
    done = finance.post(
        f"/insights/leakage/{finding.pk}/dismiss/", {"reason": "Billed in the old system"}, HTTP_HX_REQUEST="true"
    )
    assert done.content.decode().lstrip().startswith('<div class="card" id="finding-status">')
    finding.refresh_from_db()
    assert finding.status == "dismissed" and "Billed in the old system" in finding.status_note


def test_scan_now_and_filters(in_tenant_a, leaking, monkeypatch):
    import insights.services.leakage as service

    monkeypatch.setattr(service, "tenant_today", lambda: AS_OF)
    finance = client_for(in_tenant_a, email=in_tenant_a.users[Role.FINANCE])
    response = finance.post("/insights/leakage/scan/", follow=True)
    assert "3 findings" in response.content.decode()
    l2 = finance.get(
        "/insights/leakage/?rule=L2&status=live", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="finding-table"
    ).content.decode()
    assert l2.lstrip().startswith('<div id="finding-table">') and "L10" not in l2.split("<tbody>")[1]


def test_the_list_query_count_does_not_grow_with_findings(in_tenant_a, django_assert_max_num_queries):
    for _ in range(3):
        contract_with(RETAINER, start=date(2026, 6, 1))
    scan()
    finance = client_for(in_tenant_a, email=in_tenant_a.users[Role.FINANCE])
    with django_assert_max_num_queries(20) as few:
        finance.get("/insights/leakage/?status=")
    for _ in range(15):
        contract_with(RETAINER, start=date(2026, 6, 1))
    scan()
    with django_assert_max_num_queries(len(few.captured_queries)):
        finance.get("/insights/leakage/?status=")
