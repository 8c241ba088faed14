"""Integration test fixtures: a recorded broker and a worker that drains it, tenant clients, stand-ins."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.test import Client
from django_tenants.utils import schema_context

from billing.tests.conftest import media_root  # noqa: F401 - PDFs go to a temporary folder

DATA = Path(__file__).parent / "data"


def fixture_json(name: str) -> dict:
    return json.loads((DATA / name).read_text())


class Worker:
    """What a Celery worker would do with the tasks enqueued on commit, run in this thread.

    ``run_pass`` executes queued tasks (and those they enqueue) until the queue is empty: one pass.
    """

    def __init__(self, capture):
        self.queue: list[tuple[str, dict, str]] = []
        self.ran: list[str] = []
        self._capture = capture

    def send(self, name, *, kwargs, schema):
        self.queue.append((name, kwargs, schema))

    def run_pass(self) -> list[str]:
        from revexos.celery import app

        ran = []
        while self.queue:
            name, kwargs, schema = self.queue.pop(0)
            with schema_context(schema), self._capture(execute=True):
                app.tasks[name].run(**kwargs)
            ran.append(name)
        self.ran.extend(ran)
        return ran


@pytest.fixture
def worker(monkeypatch, django_capture_on_commit_callbacks):
    import billing.tasks  # noqa: F401 - registers the tasks with the app
    import integrations.tasks  # noqa: F401

    w = Worker(django_capture_on_commit_callbacks)
    monkeypatch.setattr("billing.services.enqueue.task_send", w.send)
    return w


@pytest.fixture
def webhook_client(in_tenant_a):
    return Client(HTTP_HOST=in_tenant_a.host)


@pytest.fixture
def api(in_tenant_a):
    return Client(HTTP_HOST=in_tenant_a.host, HTTP_AUTHORIZATION=f"Bearer {in_tenant_a.api_key}")
