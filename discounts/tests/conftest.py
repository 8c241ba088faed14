"""Discount test fixtures: tasks are recorded, never sent (a real worker could bill our rows later)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine


@pytest.fixture(autouse=True)
def enqueued(monkeypatch):
    sent: list[tuple[str, dict]] = []

    def record(task_name, *, kwargs, schema):
        sent.append((task_name, kwargs))

    monkeypatch.setattr("billing.services.enqueue.task_send", record)
    return sent


@pytest.fixture
def finance(in_tenant_a):
    from revexos.accounts.models import User

    return User.objects.get(email=in_tenant_a.users["finance"])


def travel(year: int, month: int, day: int, hour: int = 12):
    """Move "now" (the tenant's today in UTC) without ticking."""
    return time_machine.travel(datetime(year, month, day, hour, tzinfo=UTC), tick=False)
