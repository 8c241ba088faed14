"""Collections test fixtures: no task reaches the broker (billing's rule), PDFs in a temp folder."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def enqueued(monkeypatch):
    sent: list[tuple[str, dict]] = []

    def record(task_name, *, kwargs, schema):
        sent.append((task_name, kwargs))

    monkeypatch.setattr("billing.services.enqueue.task_send", record)
    return sent


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    from django.core.files.storage import default_storage
    from django.utils.functional import empty

    def reset():
        if default_storage._wrapped is empty:
            default_storage._setup()
        default_storage._wrapped.__dict__.pop("relative_media_root", None)

    settings.MEDIA_ROOT = str(tmp_path / "media")
    reset()
    yield tmp_path / "media"
    reset()


@pytest.fixture(autouse=True)
def _forget_caches():
    from receivables.services import paylinks

    paylinks._connected.clear()
    paylinks._hosts.clear()
    yield
    paylinks._connected.clear()
    paylinks._hosts.clear()
