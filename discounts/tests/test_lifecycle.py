"""Lifecycle on the beat and in POST /api/v1/runs: dates in the tenant's zone, idempotent, catching up, logged."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest
from django.test import Client

from discounts.models import Discount, EventAction, ExceptionEvent
from discounts.services.exceptions import credit_create, discount_create, exception_extend, price_override_create
from discounts.services.lifecycle import exceptions_lifecycle_run
from discounts.tests.conftest import travel
from discounts.tests.helpers import retainer_contract

D = Decimal
pytestmark = pytest.mark.django_db


def make(contract, user, **kw):
    fields = {
        "kind": "percentage",
        "value": D("10"),
        "start_date": date(2026, 2, 1),
        "end_date": date(2026, 3, 31),
        "reason": "launch",
        "contract": contract,
        "created_by": user,
    }
    fields.update(kw)
    return discount_create(**fields)


def test_a_discount_is_scheduled_then_active_then_expired_on_its_dates(in_tenant_a, finance):
    with travel(2026, 1, 15):
        discount = make(retainer_contract(), finance)
    assert discount.status == "scheduled"
    for day, status in [
        (date(2026, 1, 31), "scheduled"),
        (date(2026, 2, 1), "active"),
        (date(2026, 3, 31), "active"),
        (date(2026, 4, 1), "expired"),
    ]:
        exceptions_lifecycle_run(as_of=day)
        discount.refresh_from_db()
        assert discount.status == status, day


def test_running_twice_changes_nothing_the_second_time(in_tenant_a, finance):
    with travel(2026, 1, 15):
        discount = make(retainer_contract(), finance)
    first = exceptions_lifecycle_run(as_of=date(2026, 2, 1))
    second = exceptions_lifecycle_run(as_of=date(2026, 2, 1))
    assert first["discounts_activated"] == 1 and second["discounts_activated"] == 0
    assert discount.events.filter(action=EventAction.ACTIVATED).count() == 1


def test_a_beat_down_for_months_catches_up_and_logs_each_change_on_its_own_day(in_tenant_a, finance):
    with travel(2026, 1, 15):
        discount = make(retainer_contract(), finance)
    exceptions_lifecycle_run(as_of=date(2026, 5, 3), actor_label="beat")
    discount.refresh_from_db()
    assert discount.status == "expired"
    events = list(
        discount.events.exclude(action=EventAction.CREATED)
        .order_by("id")
        .values_list("action", "to_status", "effective_on", "actor_label")
    )
    assert events == [
        ("activated", "active", date(2026, 2, 1), "beat"),
        ("expired", "expired", date(2026, 4, 1), "beat"),
    ]


def test_a_run_as_of_a_past_date_never_revives_what_a_later_run_expired(in_tenant_a, finance):
    with travel(2026, 1, 15):
        discount = make(retainer_contract(), finance)
    exceptions_lifecycle_run(as_of=date(2026, 4, 2))
    exceptions_lifecycle_run(as_of=date(2026, 2, 15))
    discount.refresh_from_db()
    assert discount.status == "expired"


def test_an_extension_revives_an_expired_discount_and_is_logged_with_its_reason(in_tenant_a, finance):
    with travel(2026, 1, 15):
        discount = make(retainer_contract(), finance)
    exceptions_lifecycle_run(as_of=date(2026, 4, 2))
    with travel(2026, 4, 2):
        exception_extend(
            kind="discount", pk=discount.pk, end_date=date(2026, 6, 30), reason="renewal talks", user=finance
        )
    discount.refresh_from_db()
    assert (discount.status, discount.end_date) == ("active", date(2026, 6, 30))
    event = discount.events.get(action=EventAction.EXTENDED)
    assert (event.actor, event.reason, event.detail["old_end"], event.detail["new_end"]) == (
        finance,
        "renewal talks",
        "2026-03-31",
        "2026-06-30",
    )
    assert discount.history.count() >= 3  # created, expired, extended


def test_the_tenants_time_zone_decides_the_day(in_tenant_a, finance):
    from django.db import connection

    from discounts.services._common import tenant_today
    from revexos.tenancy.models import Tenant

    Tenant.objects.filter(schema_name=connection.schema_name).update(time_zone="Pacific/Auckland")
    connection.tenant = Tenant.objects.get(schema_name=connection.schema_name)
    try:
        with travel(2026, 3, 31, hour=12):  # 1 April 01:00 in Auckland
            assert tenant_today() == date(2026, 4, 1)
            discount = make(retainer_contract(), finance)
            assert discount.status == "expired"
    finally:
        Tenant.objects.filter(schema_name=connection.schema_name).update(time_zone="UTC")
        connection.tenant = Tenant.objects.get(schema_name=connection.schema_name)


def test_credits_and_overrides_expire_too(in_tenant_a, finance):
    with travel(2026, 1, 15):
        contract = retainer_contract()
        credit = credit_create(
            customer=contract.customer,
            amount=D("50.00"),
            currency="USD",
            expires_on=date(2026, 1, 31),
            reason="x",
            created_by=finance,
        )
        override = price_override_create(
            contract=contract,
            line_ref="L1",
            rate=D("900.00"),
            start_date=date(2026, 2, 1),
            end_date=date(2026, 2, 28),
            reason="x",
            created_by=finance,
        )
    summary = exceptions_lifecycle_run(as_of=date(2026, 3, 1))
    assert summary["credits_expired"] == 1 and summary["overrides_expired"] == 1
    credit.refresh_from_db(), override.refresh_from_db()
    assert (credit.status, override.status) == ("expired", "expired")
    assert ExceptionEvent.objects.filter(credit=credit, action="expired", effective_on=date(2026, 2, 1)).exists()


def test_the_discounts_step_is_in_the_runs_api(in_tenant_a, finance):
    with travel(2026, 1, 15):
        discount = make(retainer_contract(), finance)
    api = Client(HTTP_HOST=in_tenant_a.host, HTTP_AUTHORIZATION=f"Bearer {in_tenant_a.api_key}")
    with travel(2026, 2, 2):
        response = api.post(
            "/api/v1/runs", json.dumps({"as_of": "2026-02-01", "only": ["discounts"]}), content_type="application/json"
        )
    assert response.status_code == 200, response.content
    assert response.json()["summary"]["discounts"]["discounts_activated"] == 1
    assert Discount.objects.get(pk=discount.pk).status == "active"


def test_the_beat_task_runs_the_lifecycle_in_the_tenant(in_tenant_a, finance):
    from discounts.tasks import lifecycle_tenant

    with travel(2026, 1, 15):
        discount = make(retainer_contract(), finance)
    with travel(2026, 2, 1, hour=9):
        summary = lifecycle_tenant.run()
    assert summary["discounts_activated"] == 1
    discount.refresh_from_db()
    assert discount.status == "active"
