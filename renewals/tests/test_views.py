"""The renewal queue: who sees what, inline decisions over htmx, filters, and a flat query count."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from renewals.models import RenewalAlert, RenewalStatus
from renewals.services.alerts import renewal_alerts_raise_due
from renewals.tests.helpers import contract_make
from revexos.accounts.models import User
from tests.helpers import client_for

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def people(in_tenant_a):
    return {role: User.objects.get(email=email) for role, email in in_tenant_a.users.items()}


@pytest.fixture
def book(people, other_am):
    """Two alerts of the tenant's account manager, one of another's; all inside their window."""
    from renewals.services._common import tenant_today

    today = tenant_today()
    mine_urgent = contract_make(
        owner=people["account_manager"],
        end=today.replace(day=1) + _days(40),
        notice_days=30,
        number=f"MINE-U-{today:%H%M%S%f}",
        monthly="500.00",
    )
    mine_big = contract_make(
        owner=people["account_manager"],
        end=today + _days(55),
        notice_days=30,
        number=f"MINE-B-{today:%H%M%S%f}",
        monthly="9000.00",
    )
    theirs = contract_make(owner=other_am, end=today + _days(50), number=f"THEIRS-{today:%H%M%S%f}")
    renewal_alerts_raise_due(as_of=today)
    return {"mine_urgent": mine_urgent, "mine_big": mine_big, "theirs": theirs}


def _days(n):
    from datetime import timedelta

    return timedelta(days=n)


def test_an_account_manager_sees_only_their_own_queue_by_default(in_tenant_a, people, book):
    client = client_for(in_tenant_a, email=people["account_manager"].email)
    response = client.get("/renewals/")
    body = response.content.decode()
    assert response.status_code == 200
    assert book["mine_urgent"].number in body and book["mine_big"].number in body
    assert book["theirs"].number not in body
    # asking for everyone's does not widen an account manager's view
    assert book["theirs"].number not in client.get("/renewals/?owner=all").content.decode()


def test_the_queue_is_sorted_by_notice_deadline_then_value(in_tenant_a, people, book):
    client = client_for(in_tenant_a, email=people["account_manager"].email)
    body = client.get("/renewals/").content.decode()
    assert body.index(book["mine_urgent"].number) < body.index(book["mine_big"].number)


@pytest.mark.parametrize("role", ["admin", "finance"])
def test_admin_and_finance_see_everyone_and_can_narrow_by_owner(in_tenant_a, people, book, role, other_am):
    client = client_for(in_tenant_a, email=people[role].email)
    body = client.get("/renewals/").content.decode()
    assert all(book[k].number in body for k in book)
    narrowed = client.get(f"/renewals/?owner={other_am.pk}").content.decode()
    assert book["theirs"].number in narrowed and book["mine_big"].number not in narrowed


def test_filters_by_status_and_quarter(in_tenant_a, people, book):
    client = client_for(in_tenant_a, email=people["admin"].email)
    alert = book["theirs"].renewal_alerts.get()
    RenewalAlert.objects.filter(pk=alert.pk).update(status=RenewalStatus.CHURNED)
    assert book["theirs"].number not in client.get("/renewals/").content.decode()  # settled: not in the action queue
    assert book["theirs"].number in client.get("/renewals/?status=churned").content.decode()
    from renewals.selectors import quarter_of

    quarter = quarter_of(book["mine_big"].end_date)
    body = client.get(f"/renewals/?status=all&quarter={quarter}").content.decode()
    assert book["mine_big"].number in body
    assert book["mine_big"].number not in client.get("/renewals/?status=all&quarter=1999-Q1").content.decode()


def test_htmx_filtering_returns_only_the_queue_partial(in_tenant_a, people, book):
    client = client_for(in_tenant_a, email=people["admin"].email)
    body = client.get("/renewals/?status=open", **HTMX).content.decode()
    assert body.lstrip().startswith('<div id="queue">') and "<html" not in body


def test_a_viewer_reads_the_queue_but_cannot_record_decisions(in_tenant_a, people, book):
    client = client_for(in_tenant_a, email=people["viewer"].email)
    body = client.get("/renewals/").content.decode()
    assert book["theirs"].number in body and 'name="decision"' not in body
    alert = book["theirs"].renewal_alerts.get()
    response = client.post(f"/renewals/{alert.pk}/decide/", {"decision": "churned", "note": "x"}, **HTMX)
    assert response.status_code == 403
    alert.refresh_from_db()
    assert alert.status == RenewalStatus.OPEN


def test_an_account_manager_cannot_decide_another_managers_renewal(in_tenant_a, people, book):
    client = client_for(in_tenant_a, email=people["account_manager"].email)
    alert = book["theirs"].renewal_alerts.get()
    assert client.post(f"/renewals/{alert.pk}/decide/", {"decision": "churned", "note": "x"}, **HTMX).status_code == 403


def test_an_inline_decision_swaps_the_row(in_tenant_a, people, book):
    client = client_for(in_tenant_a, email=people["account_manager"].email)
    alert = book["mine_big"].renewal_alerts.get()
    response = client.post(
        f"/renewals/{alert.pk}/decide/",
        {"decision": "renewing", "note": "Proposal sent", "term_months": "24", "uplift_pct": "3"},
        **HTMX,
    )
    body = response.content.decode()
    assert response.status_code == 200 and body.lstrip().startswith(f'<tbody id="alert-{alert.pk}"')
    assert "Renewing" in body and "Recorded" in body and "Proposal sent" in body
    alert.refresh_from_db()
    assert (alert.status, alert.proposed_terms) == ("renewing", {"term_months": 24, "uplift_pct": "3"})


def test_an_invalid_decision_shows_the_errors_in_the_row(in_tenant_a, people, book):
    client = client_for(in_tenant_a, email=people["account_manager"].email)
    alert = book["mine_big"].renewal_alerts.get()
    response = client.post(f"/renewals/{alert.pk}/decide/", {"decision": "snoozed", "note": ""}, **HTMX)
    body = response.content.decode()
    assert response.status_code == 200
    assert "Add a note" in body and "Choose the date" in body and "alert-group open" in body
    alert.refresh_from_db()
    assert alert.status == RenewalStatus.OPEN


def test_without_htmx_a_decision_redirects_back_to_the_queue(in_tenant_a, people, book):
    client = client_for(in_tenant_a, email=people["finance"].email)
    alert = book["theirs"].renewal_alerts.get()
    response = client.post(f"/renewals/{alert.pk}/decide/", {"decision": "churning", "note": "Going elsewhere"})
    assert response.status_code == 303 and response["Location"] == "/renewals/"
    bad = client.post(f"/renewals/{alert.pk}/decide/", {"decision": "churning", "note": ""})
    assert bad.status_code == 422 and "Add a note" in bad.content.decode()


def test_the_queue_query_count_does_not_grow_with_rows(in_tenant_a, people):
    from renewals.services._common import tenant_today

    client = client_for(in_tenant_a, email=people["admin"].email)
    today = tenant_today()

    def count():
        with CaptureQueriesContext(connection) as ctx:
            assert client.get("/renewals/").status_code == 200
        return len(ctx.captured_queries)

    contract_make(owner=people["account_manager"], end=today + _days(30))
    renewal_alerts_raise_due(as_of=today)
    count()  # the first request of a session loads what later ones have cached
    few = count()
    for _ in range(6):
        contract_make(owner=people["account_manager"], end=today + _days(30))
    renewal_alerts_raise_due(as_of=today)
    assert count() == few <= 16


def test_the_quarter_view_shows_value_at_stake_per_currency(in_tenant_a, people, book):
    client = client_for(in_tenant_a, email=people["finance"].email)
    response = client.get("/renewals/quarters/")
    body = response.content.decode()
    assert response.status_code == 200
    # 500 + 9,000 + 1,000 a month = 126,000.00 a year at stake, if all three end in one quarter
    from renewals.selectors import renewals_by_quarter
    from renewals.services._common import tenant_today

    rows = renewals_by_quarter(user=people["finance"], start=tenant_today())
    total = sum(r.at_stake for r in rows if r.currency == "USD")
    assert total == 126000
    assert "USD" in body


def test_the_home_panel_counts_open_renewals(in_tenant_a, people, book):
    client = client_for(in_tenant_a, email=people["account_manager"].email)
    body = client.get("/").content.decode()
    assert '2</span> <span class="muted">renewals need a decision' in body
    assert "114,000.00" in body  # the manager's own: (500 + 9,000) × 12


def test_renewals_is_in_the_navigation_for_every_role(in_tenant_a, people):
    for role in ("admin", "finance", "account_manager", "viewer"):
        body = client_for(in_tenant_a, email=people[role].email).get("/").content.decode()
        assert 'href="/renewals/"' in body, role
