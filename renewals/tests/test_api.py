"""GET /api/v1/renewal-alerts: filters, money as decimal strings, tenant API key."""

from __future__ import annotations

from datetime import date

import pytest
from django.test import Client

from renewals.services.alerts import renewal_alerts_raise_due
from renewals.services.decisions import renewal_decide
from renewals.tests.helpers import contract_make

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(in_tenant_a):
    client = Client(HTTP_HOST=in_tenant_a.host, HTTP_AUTHORIZATION=f"Bearer {in_tenant_a.api_key}")
    return client


@pytest.fixture
def alerts(am, other_am):
    a = contract_make(owner=am, end=date(2026, 12, 31), monthly="3100.00", notice_days=30, currency="USD")
    b = contract_make(owner=other_am, end=date(2026, 12, 15), monthly="100000", currency="JPY", notice_days=60)
    renewal_alerts_raise_due(as_of=date(2026, 11, 1))
    return a, b


def test_lists_alerts_most_urgent_first_with_money_as_strings(api, alerts, am):
    a, b = alerts
    response = api.get("/api/v1/renewal-alerts")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    first, second = body["items"]
    assert first["contract"] == b.number and first["notice_deadline"] == "2026-10-16"
    assert (first["currency"], first["annual_recurring_value"]) == ("JPY", "1200000")
    assert second == {
        **second,
        "id": str(a.renewal_alerts.get().pk),
        "contract": a.number,
        "customer": a.customer.external_id,
        "status": "open",
        "end_date": "2026-12-31",
        "window_days": 60,
        "window_start": "2026-11-01",
        "notice_deadline": "2026-12-01",
        "currency": "USD",
        "annual_recurring_value": "37200.00",
        "remaining_value": "6200.00",
        "owner": am.email,
        "auto_renew": True,
        "proposed_terms": {},
    }


def test_filters_by_status_owner_and_dates(api, alerts, am, other_am):
    a, b = alerts
    renewal_decide(
        alert=a.renewal_alerts.get(),
        decision="renewing",
        note="Proposal",
        user=am,
        proposed_terms={"uplift_pct": "4"},
        today=date(2026, 11, 2),
    )
    numbers = lambda q: [i["contract"] for i in api.get(f"/api/v1/renewal-alerts{q}").json()["items"]]  # noqa: E731
    assert numbers("?status=renewing") == [a.number]
    assert numbers("?status=action") == [b.number, a.number]
    assert numbers(f"?owner={other_am.email}") == [b.number]
    assert numbers(f"?owner={am.pk}") == [a.number]
    assert numbers("?due_before=2026-12-20") == [b.number]
    assert numbers("?notice_before=2026-11-30") == [b.number]
    renewing = api.get("/api/v1/renewal-alerts?status=renewing").json()["items"][0]
    assert renewing["proposed_terms"] == {"uplift_pct": "4"} and renewing["decision_note"] == "Proposal"


def test_bad_filters_are_named(api, alerts):
    response = api.get("/api/v1/renewal-alerts?status=maybe&due_before=soon")
    assert response.status_code == 422
    fields = response.json()["error"]["fields"]
    assert "due_before" in fields or "status" in fields


def test_needs_the_tenants_api_key(in_tenant_a, tenant_b, alerts):
    assert Client(HTTP_HOST=in_tenant_a.host).get("/api/v1/renewal-alerts").status_code == 401
    other = Client(HTTP_HOST=in_tenant_a.host, HTTP_AUTHORIZATION=f"Bearer {tenant_b.api_key}")
    assert other.get("/api/v1/renewal-alerts").status_code == 401


def test_pages(api, alerts):
    body = api.get("/api/v1/renewal-alerts?limit=1&offset=1").json()
    assert body["count"] == 2 and len(body["items"]) == 1


# ----------------------------------------------------------------------------- decisions


def _post(api, path, body):
    import json

    return api.post(path, json.dumps(body), content_type="application/json")


def test_a_decision_is_recorded_through_the_api(api, alerts):
    import time_machine

    a, _b = alerts
    alert = a.renewal_alerts.get()
    with time_machine.travel(date(2026, 11, 2), tick=False):
        response = _post(
            api,
            f"/api/v1/renewal-alerts/{alert.pk}/decisions",
            {"decision": "renewing", "note": "Proposal sent", "term_months": 24, "uplift_pct": "3.5"},
        )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "renewing" and body["proposed_terms"] == {"term_months": 24, "uplift_pct": "3.5"}
    assert [d["decision"] for d in body["decisions"]] == ["renewing"]
    assert body["decisions"][0]["decided_by"] is None
    assert api.get(f"/api/v1/renewal-alerts/{alert.pk}").json()["decisions"] == body["decisions"]


def test_a_renewed_decision_writes_the_next_term(api, alerts):
    import time_machine

    a, _b = alerts
    alert = a.renewal_alerts.get()
    with time_machine.travel(date(2026, 11, 2), tick=False):
        response = _post(api, f"/api/v1/renewal-alerts/{alert.pk}/decisions", {"decision": "renewed", "note": "Signed"})
    assert response.status_code == 201, response.content
    a.refresh_from_db()
    assert a.end_date == date(2027, 12, 31)


def test_decided_by_applies_that_users_permissions(api, alerts, other_am):
    a, _b = alerts
    alert = a.renewal_alerts.get()
    response = _post(
        api,
        f"/api/v1/renewal-alerts/{alert.pk}/decisions",
        {"decision": "churning", "note": "x", "decided_by": other_am.email},
    )
    assert response.status_code == 403 and response.json()["error"]["code"] == "forbidden"


@pytest.mark.parametrize(
    "body, field",
    [
        ({"decision": "maybe", "note": "x"}, "decision"),
        ({"decision": "renewing"}, "note"),
        ({"decision": "snoozed", "note": "x"}, "snooze_until"),
        ({"decision": "snoozed", "note": "x", "snooze_until": "9999-01-01"}, "snooze_until"),
        ({"decision": "renewing", "note": "x", "term_months": "1_2"}, "term_months"),
        ({"decision": "renewing", "note": "x", "uplift_pct": "٥"}, "uplift_pct"),
        ({"decision": "renewing", "note": "x", "decided_by": "nobody@nowhere.example"}, "decided_by"),
    ],
)
def test_bad_decisions_are_named_and_change_nothing(api, alerts, body, field):
    a, _b = alerts
    alert = a.renewal_alerts.get()
    response = _post(api, f"/api/v1/renewal-alerts/{alert.pk}/decisions", body)
    assert response.status_code == 422, response.content
    assert field in response.json()["error"]["fields"], response.json()
    alert.refresh_from_db()
    assert alert.status == "open" and not alert.decisions.exists()


def test_an_unknown_alert_is_a_404(api):
    assert (
        _post(api, "/api/v1/renewal-alerts/999999/decisions", {"decision": "renewing", "note": "x"}).status_code == 404
    )
    assert api.get("/api/v1/renewal-alerts/²").status_code == 404
