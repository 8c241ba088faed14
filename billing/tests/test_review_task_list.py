"""Review tasks as a compact list: one line per task with links to what it is about, filters,
and bulk resolve / assign (issue #16 item 14)."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

import pytest

from billing.models import BillingReviewTask
from billing.services.reviews import review_task_raise
from billing.tests.builders import contract_with
from revexos.accounts.models import Role, User
from tests.helpers import client_for

D = Decimal
URL = "/billing/review-tasks/"
RETAINER = {"kind": "recurring", "amount": D("1000.00"), "frequency": "monthly", "timing": "advance"}


@pytest.fixture
def finance(in_tenant_a):
    return client_for(in_tenant_a, email=in_tenant_a.users[Role.FINANCE])


def tasks(count: int, **kwargs) -> list[BillingReviewTask]:
    contract = contract_with(RETAINER, start=date(2026, 1, 1))
    made = []
    for n in range(count):
        key = f"test:{contract.pk}:{n}"
        review_task_raise(
            kind=kwargs.get("kind", "scope_change" if n % 2 else "budget_overrun"),
            dedupe_key=key,
            title=f"Task {n} for {contract.number}",
            detail="Line one\nLine two of a long explanation " * 3,
            contract_id=contract.pk,
        )
        made.append(BillingReviewTask.objects.get(dedupe_key=key))
    return made


def test_24_tasks_make_a_compact_list_without_a_text_box_each(finance):
    made = tasks(24)
    page = finance.get(URL).content.decode()
    assert len(re.findall(r'<tr id="task-\d+"', page)) == 24
    assert page.count('name="note"') == 1  # one note for the bulk action, not one per task
    assert page.count('name="task"') == 24 and page.count("<details") == 24
    assert f'href="/contracts/{made[0].contract_id}/"' in page or "contracts/" in page


def test_each_task_links_to_its_contract_invoice_and_finding(finance, in_tenant_a):
    from insights.services.leakage import leakage_scan

    contract = contract_with(
        {"time_and_materials": True, "rates": [("engineer", "150.00")], "cap": None}, start=date(2026, 1, 1)
    )
    from billing.tests.builders import hours

    hours(contract, "4", date(2026, 5, 10), line_ref="L1")
    leakage_scan(as_of=date(2026, 6, 15))
    task = BillingReviewTask.objects.get(contract=contract, kind="leakage")
    finding = task.leakage_findings.get()
    held = contract_with(RETAINER, start=date(2026, 3, 1), auto_issue=False, po_required=True, po_number="")
    from billing.services.triggers import contract_bill_due

    (invoice,) = contract_bill_due(contract_id=held.pk, as_of=date(2026, 3, 1)).invoices
    page = finance.get(URL + "?status=open").content.decode()
    row = page[page.index(f'id="task-{task.pk}"') :]
    row = row[: row.index("</tr>")]
    assert f'href="/insights/leakage/{finding.pk}/"' in row and "L2 finding" in row
    assert f'href="/contracts/{contract.pk}/"' in row
    held_row = page[page.index(f'id="task-{invoice.review_tasks.get().pk}"') :]
    assert f'href="/billing/invoices/{invoice.pk}/"' in held_row[: held_row.index("</tr>")]


def test_bulk_resolve_closes_the_selected_tasks_with_one_note(finance, in_tenant_a):
    made = tasks(5)
    chosen = [t.pk for t in made[:3]]
    response = finance.post(
        URL + "bulk/", {"task": chosen, "action": "resolve", "note": "Agreed with the client", "next": URL}
    )
    assert response.status_code == 302 and response["Location"] == URL
    me = User.objects.get(email=in_tenant_a.users[Role.FINANCE])
    for task in BillingReviewTask.objects.filter(pk__in=chosen):
        assert (
            task.status == "resolved" and task.assignee == me and task.resolution.startswith("Agreed with the client")
        )
    assert set(BillingReviewTask.objects.filter(pk__in=[t.pk for t in made[3:]]).values_list("status", flat=True)) == {
        "open"
    }
    page = finance.get(URL).content.decode()
    assert "3 tasks resolved" in page or "3 tasks resolved" in finance.get(URL).content.decode()


def test_bulk_resolve_without_a_note_changes_nothing(finance):
    made = tasks(2)
    response = finance.post(
        URL + "bulk/", {"task": [t.pk for t in made], "action": "resolve", "note": " "}, follow=True
    )
    assert "Say what you decided" in response.content.decode()
    assert set(BillingReviewTask.objects.filter(pk__in=[t.pk for t in made]).values_list("status", flat=True)) == {
        "open"
    }


def test_bulk_assign_gives_the_selected_tasks_to_one_person(finance, in_tenant_a):
    made = tasks(4)
    me = User.objects.get(email=in_tenant_a.users[Role.FINANCE])
    finance.post(URL + "bulk/", {"task": [t.pk for t in made[:2]], "action": "assign", "bulk_assignee": me.pk})
    assert [t.assignee_id for t in BillingReviewTask.objects.filter(pk__in=[t.pk for t in made]).order_by("pk")] == [
        me.pk,
        me.pk,
        None,
        None,
    ]
    mine = finance.get(URL + f"?status=open&assignee={me.pk}").content.decode()
    assert len(re.findall(r'<tr id="task-\d+"', mine)) == 2
    unassigned = finance.get(URL + "?status=open&assignee=none&kind=scope_change").content.decode()
    assert all("scope change" in row.lower() for row in re.findall(r'<tr id="task-\d+".*?</tr>', unassigned, re.S))


def test_viewers_see_the_list_but_no_bulk_actions(in_tenant_a):
    made = tasks(3)
    viewer = client_for(in_tenant_a, email=in_tenant_a.users[Role.VIEWER])
    page = viewer.get(URL).content.decode()
    assert len(re.findall(r'<tr id="task-\d+"', page)) == 3 and 'name="task"' not in page and "task-bulk" not in page
    response = viewer.post(URL + "bulk/", {"task": [made[0].pk], "action": "resolve", "note": "x"})
    assert response.status_code == 403
    assert BillingReviewTask.objects.get(pk=made[0].pk).status == "open"


def test_the_list_query_count_does_not_grow_with_tasks(finance, django_assert_max_num_queries):
    tasks(3)
    with django_assert_max_num_queries(14) as few:
        finance.get(URL)
    tasks(30)
    with django_assert_max_num_queries(len(few.captured_queries)):
        finance.get(URL)
