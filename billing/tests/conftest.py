"""Billing test fixtures.

Tasks are never sent to the broker from these tests: a real worker of another test could pick
them up later and bill our committed contracts as of the real today. ``enqueued`` records what
would have been sent, so tests can assert that evaluation is enqueued on commit.
"""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def enqueue_unpaused(monkeypatch):
    """A broker failure pauses enqueueing for a while (process-wide); no test inherits another's pause."""
    monkeypatch.setattr("billing.services.enqueue._paused_until", 0.0)


@pytest.fixture(autouse=True)
def enqueued(monkeypatch):
    sent: list[tuple[str, dict]] = []

    def record(task_name, *, kwargs, schema):
        sent.append((task_name, kwargs))

    monkeypatch.setattr("billing.services.enqueue.task_send", record)
    return sent


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    """Stored PDFs go to a temporary folder, not var/media.

    django-tenants' storage caches its root and (a bug in its setting_changed handler) never
    clears it, so the cached value is dropped by hand around the override.
    """
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
