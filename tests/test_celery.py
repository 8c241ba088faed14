"""Tenant-aware Celery on a real worker with the Redis broker."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from urllib.parse import quote

import pytest
from django.db import connection
from django_tenants.utils import schema_context

from revexos.celery import app
from revexos.tenancy.tasks import current_schema, dispatch_to_tenants

pytestmark = pytest.mark.slow


def _database_url_of_test_db() -> str:
    s = connection.settings_dict
    host = s.get("HOST") or "localhost"
    if host.startswith("/"):
        host = quote(host, safe="")
    port = f":{s['PORT']}" if s.get("PORT") else ""
    password = f":{quote(s['PASSWORD'])}" if s.get("PASSWORD") else ""
    return f"postgres://{s['USER']}{password}@{host}{port}/{s['NAME']}"


@pytest.fixture(scope="module")
def worker(django_db_setup, django_db_blocker):
    """A real `celery worker` process on a private queue, against the test database."""
    queue = f"rvx-test-{uuid.uuid4().hex[:8]}"
    with django_db_blocker.unblock():
        env = {**os.environ, "DATABASE_URL": _database_url_of_test_db(), "CELERY_QUEUE": queue}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "revexos",
            "worker",
            "--pool=solo",
            "-Q",
            queue,
            "-l",
            "WARNING",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    previous = app.conf.task_default_queue
    app.conf.task_default_queue = queue
    try:
        yield queue
    finally:
        app.conf.task_default_queue = previous
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_a_task_enqueued_in_tenant_a_runs_in_tenant_a(worker, tenant_a, tenant_b):
    with schema_context(tenant_a.schema):
        result_a = current_schema.apply_async(queue=worker)
    with schema_context(tenant_b.schema):
        result_b = current_schema.apply_async(queue=worker)
    assert result_a.get(timeout=60) == tenant_a.schema
    assert result_b.get(timeout=60) == tenant_b.schema


def test_a_tenant_task_enqueued_without_a_tenant_fails_loudly(worker):
    connection.set_schema_to_public()
    result = current_schema.apply_async(queue=worker)
    with pytest.raises(Exception) as exc:
        result.get(timeout=60)
    assert type(exc.value).__name__ == "TenantContextMissing"
    assert "without a tenant" in str(exc.value)


def test_the_dispatcher_fans_out_one_task_per_tenant(worker, tenant_a, tenant_b, django_db_blocker):
    from celery.result import AsyncResult

    with django_db_blocker.unblock():
        task_ids = dispatch_to_tenants("revexos.tenancy.tasks.current_schema")
    assert {tenant_a.schema, tenant_b.schema} <= set(task_ids)
    for schema, task_id in task_ids.items():
        assert AsyncResult(task_id, app=app).get(timeout=60) == schema


def test_the_beat_schedule_only_fires_dispatchers():
    app.loader.import_default_modules()  # tasks register when their modules are imported
    for entry in app.conf.beat_schedule.values():
        assert entry["task"] == "revexos.tenancy.tasks.dispatch_to_tenants"
        assert entry["args"][0] in app.tasks, f"unknown tenant task {entry['args'][0]}"


def test_acks_late_only_on_idempotent_tasks():
    from revexos.tasks import IdempotentTenantTask

    app.loader.import_default_modules()
    for name, task in app.tasks.items():
        if getattr(task, "acks_late", False):
            assert isinstance(task, IdempotentTenantTask), f"{name} acks late but is not marked idempotent"
