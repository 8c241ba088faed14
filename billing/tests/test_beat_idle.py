"""The hourly beat over many tenants: an idle tenant costs a few queries, a tenant with anything due
still gets every step that has work (``revexos.cycle.cycle_steps_due``)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing import tasks
from billing.services.triggers import contract_bill_due
from billing.tests.builders import contract_with
from revexos import cycle

D = Decimal
RETAINER = {
    "kind": "recurring",
    "description": "Retainer",
    "amount": D("1000.00"),
    "frequency": "monthly",
    "timing": "advance",
}


@pytest.fixture(autouse=True)
def march():
    with time_machine.travel(datetime(2026, 3, 10, 9, tzinfo=UTC), tick=False):
        yield


@pytest.fixture
def ran(monkeypatch):
    """Every step's run replaced by a recorder (chunks are not sent): which steps the beat ran."""
    names: list[str] = []

    def recorder(name):
        def run(*, as_of, contract_ids=None):
            names.append(name)
            return {}

        return run

    for name, step in list(cycle._STEPS.items()):
        monkeypatch.setitem(
            cycle._STEPS, name, dataclasses.replace(step, run=recorder(name), contract_ids=None, prepare=None)
        )
    return names


def test_every_cycle_step_says_when_it_has_something_due():
    assert [s.name for s in cycle.cycle_steps() if s.due is None] == []


def test_an_idle_tenant_costs_at_most_five_queries(in_tenant_a, ran):
    with CaptureQueriesContext(connection) as queries:
        assert tasks.cycle_tenant.run() == {"idle": True}
    assert len(queries.captured_queries) <= 5, [q["sql"] for q in queries.captured_queries]
    assert ran == []


def _contract():
    return contract_with(RETAINER, start=date(2026, 3, 1))


def _issued_invoice():
    contract = contract_with(RETAINER, start=date(2026, 1, 1))
    contract_bill_due(contract_id=contract.pk, as_of=date(2026, 2, 1))


def _discount():
    from discounts.models import Discount

    contract = _contract()
    Discount.objects.create(
        kind="percentage",
        value=D("10"),
        scope="contract",
        customer=contract.customer,
        contract=contract,
        start_date=date(2026, 4, 1),
        end_date=date(2026, 5, 31),
        status="scheduled",
        reason="Spring",
    )


def _harvest_connection():
    from integrations.models import Connection

    Connection.objects.create(source="harvest", api_token="token", settings={"account_id": "1"})


def _audit():
    from audits.models import Audit

    Audit.objects.create(name="Prospect", expires_at=timezone.now() - timedelta(days=1))


@pytest.mark.parametrize(
    "make, steps",
    [
        (_contract, {"renewals", "billing", "leakage"}),
        (_issued_invoice, {"billing", "collections", "invoices_overdue"}),
        (_discount, {"discounts"}),
        (_harvest_connection, {"integrations"}),
        (_audit, {"audit_retention"}),
    ],
)
def test_a_tenant_with_something_due_gets_the_steps_that_have_work(in_tenant_a, ran, make, steps):
    make()
    tasks.cycle_tenant.run()
    assert steps <= set(ran)
    assert ran == [s.name for s in cycle.cycle_steps() if s.name in ran]  # in the cycle's order


def test_a_contract_due_today_is_billed_by_the_beat(in_tenant_a, monkeypatch):
    sent = []
    monkeypatch.setattr(tasks.cycle_chunk, "apply_async", lambda kwargs, headers: sent.append(kwargs))
    _contract()
    assert tasks.cycle_tenant.run()["billing"] == 1
    for kwargs in sent:
        tasks.cycle_chunk.run(**kwargs)
    from billing.models import Invoice

    assert Invoice.objects.count() == 1
