"""The tenant tasks are thin: they resolve the tenant's today and call one service."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
import time_machine
from django.core import mail

from renewals.models import RenewalAlert
from renewals.tasks import renewal_digest_tenant, renewals_cycle_tenant
from renewals.tests.helpers import contract_make

pytestmark = pytest.mark.django_db


def test_the_cycle_task_runs_as_of_the_tenants_today(am):
    contract = contract_make(owner=am, end=date(2026, 12, 31))
    with time_machine.travel(datetime(2026, 11, 1, 9, tzinfo=UTC), tick=False):
        result = renewals_cycle_tenant.run()
    assert result["renewal_alerts_raised"] == 1
    assert RenewalAlert.objects.get(contract=contract).raised_on == date(2026, 11, 1)


def test_the_digest_waits_for_the_tenants_morning(am):
    contract_make(owner=am, end=date(2026, 12, 31))
    renewals_cycle_tenant.run(as_of="2026-11-01")
    with time_machine.travel(datetime(2026, 11, 2, 5, tzinfo=UTC), tick=False):
        assert renewal_digest_tenant.run() == []
    with time_machine.travel(datetime(2026, 11, 2, 8, tzinfo=UTC), tick=False):
        assert renewal_digest_tenant.run() == [am.pk]
        assert renewal_digest_tenant.run() == []
    assert len(mail.outbox) == 1


def test_the_beat_sends_the_digest_through_the_tenant_dispatcher():
    from revexos.celery import app

    entry = app.conf.beat_schedule["renewals-digest"]
    assert entry["task"] == "revexos.tenancy.tasks.dispatch_to_tenants"
    assert entry["args"] == ("renewals.tasks.renewal_digest_tenant",)
