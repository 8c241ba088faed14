"""An account manager works through the renewal queue in a real browser and records each kind of
decision; the contract page shows the renewed term; a viewer reads the queue but cannot decide."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from django_tenants.utils import schema_context

from conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PREFIX = {"renewing": "RNG", "renewed": "RND", "churning": "CHG", "churned": "CHD", "snoozed": "SNZ"}


def _book(tenant, tag: str) -> dict[str, object]:
    """Five contracts of the tenant's account manager inside their window, each with its alert."""
    from renewals.services._common import tenant_today
    from renewals.services.alerts import alert_for
    from renewals.tests.helpers import contract_make
    from revexos.accounts.models import User

    with schema_context(tenant.schema):
        am = User.objects.get(email=tenant.users["account_manager"])
        today = tenant_today()
        specs = {
            "renewing": {"end": today + timedelta(days=50), "monthly": "4200.00", "customer_name": f"Globex {tag}"},
            "renewed": {
                "end": today + timedelta(days=40),
                "monthly": "3100.00",
                "customer_name": f"Initech {tag}",
                "uplift": "5",
            },
            "churning": {"end": today + timedelta(days=55), "monthly": "1800.00", "customer_name": f"Umbrella {tag}"},
            "churned": {
                "end": today + timedelta(days=45),
                "monthly": "950.00",
                "customer_name": f"Hooli {tag}",
                "auto_renew": False,
            },
            "snoozed": {
                "end": today + timedelta(days=34),
                "monthly": "12500.00",
                "customer_name": f"Stark {tag}",
                "notice_days": 30,
            },
        }
        contracts = {}
        for kind, spec in specs.items():
            contract = contract_make(
                owner=am,
                number=f"{PREFIX[kind]}-{tag}",
                title="Platform services",
                start=today - timedelta(days=300),
                **spec,
            )
            alert = alert_for(contract, as_of=today, tenant_window=60, now=timezone.now())
            if kind == "snoozed":
                alert.escalated_at = timezone.now()  # its notice deadline is four days away
            alert.save()
            contracts[kind] = contract
        connection.set_schema_to_public()
        return contracts


def _sign_in(page, url, email):
    page.goto(url)
    page.fill("#id_username", email)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("text=Good to see you")


def _row(page, contract):
    return page.locator("tbody.alert-group", has=page.locator(f"text={contract.number}"))


def _decide(page, contract, decision: str, note: str, **fields):
    row = _row(page, contract)
    row_id = row.get_attribute("id")
    row.get_by_role("button", name="Decide").click()
    row.locator("textarea[name=note]").fill(note)
    for name, value in fields.items():
        row.locator(f"input[name={name}]").fill(value)
    row.locator(f"button[name=decision][value={decision}]").click()
    page.wait_for_selector(f"#{row_id} .recorded")
    return page.locator(f"#{row_id}")


def test_an_account_manager_works_through_the_renewal_queue(page, shot, live_server_url, tenant_a):
    tag = uuid.uuid4().hex[:6].upper()
    book = _book(tenant_a, tag)
    _sign_in(page, tenant_a.url(live_server_url, "/accounts/login/"), tenant_a.users["account_manager"])
    assert page.locator("#panel-renewals .figure").first.is_visible()
    shot("home")

    page.locator("nav >> text=Renewals").click()
    page.wait_for_selector("h1:text('Renewals')")
    for contract in book.values():
        assert _row(page, contract).count() == 1
    # most urgent first: the escalated one (notice in four days) comes before the others of this book
    body = page.content()
    assert body.index(book["snoozed"].number) < body.index(book["renewed"].number) < body.index(book["churning"].number)
    shot("queue")

    # an error stays in the row and says what to fix
    row = _row(page, book["snoozed"])
    row.get_by_role("button", name="Decide").click()
    row.locator("button[name=decision][value=snoozed]").click()
    page.wait_for_selector(f"#{row.get_attribute('id')} .errorlist")
    assert "Add a note" in _row(page, book["snoozed"]).inner_text()
    shot("decision-error")
    row = _row(page, book["snoozed"])
    snooze_to = (timezone.localdate() + timedelta(days=3)).isoformat()
    row.locator("textarea[name=note]").fill("CFO back from holiday on Monday")
    row.locator("input[name=snooze_until]").fill(snooze_to)
    row.locator("button[name=decision][value=snoozed]").click()
    page.wait_for_selector(f"#{row.get_attribute('id')} .recorded")
    assert "Snoozed" in _row(page, book["snoozed"]).inner_text()

    row = _decide(
        page, book["renewing"], "renewing", "Proposal sent: 24 months at 3 %", term_months="24", uplift_pct="3"
    )
    assert "Renewing" in row.inner_text() and "proposed 24 mo +3 %" in row.inner_text().replace("\xa0", " ")
    shot("renewing")

    row = _decide(page, book["renewed"], "renewed", "Countersigned renewal, standard uplift")
    assert "Renewed" in row.inner_text()
    row = _decide(page, book["churning"], "churning", "Evaluating a competitor; exec call booked")
    assert "Churning" in row.inner_text()
    row = _decide(page, book["churned"], "churned", "Confirmed in writing: not renewing")
    assert "Churned" in row.inner_text()
    # the history opens under the row
    row.get_by_role("button", name="History").click()
    assert "Confirmed in writing" in row.locator(".decision-log").inner_text()
    shot("decided")

    # reloaded, the queue keeps what still needs action; settled ones are under their status
    page.goto(tenant_a.url(live_server_url, "/renewals/"))
    assert _row(page, book["renewed"]).count() == 0 and _row(page, book["churned"]).count() == 0
    assert _row(page, book["renewing"]).count() == 1 and _row(page, book["churning"]).count() == 1
    page.select_option("#id_status", "all")
    page.wait_for_selector(f"text={book['renewed'].number}")
    shot("all-statuses")

    # the contract page shows the renewed term: a year on, with version 2 from the day after the old end
    old_end = book["renewed"].end_date
    page.goto(tenant_a.url(live_server_url, f"/contracts/{book['renewed'].pk}/"))
    new_end = old_end.replace(year=old_end.year + 1)
    assert re.search(new_end.strftime("%-d %b %Y"), page.content())
    shot("renewed-contract")

    page.goto(tenant_a.url(live_server_url, "/renewals/quarters/"))
    page.wait_for_selector("#quarters")
    shot("quarters")


def test_a_viewer_reads_the_queue_without_decision_buttons(page, shot, live_server_url, tenant_a):
    tag = uuid.uuid4().hex[:6].upper()
    book = _book(tenant_a, tag)
    _sign_in(page, tenant_a.url(live_server_url, "/accounts/login/"), tenant_a.users["viewer"])
    page.goto(tenant_a.url(live_server_url, "/renewals/"))
    row = _row(page, book["renewed"])
    assert row.count() == 1
    assert row.get_by_role("button", name="Decide").count() == 0
    row.get_by_role("button", name="History").click()
    assert row.locator("button[name=decision]").count() == 0
    shot("viewer")
