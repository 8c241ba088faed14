"""Enqueue tasks after commit, never before, and never fail the request because of the broker.

A fact is acknowledged once it is committed; if the broker is down at that moment the task is
lost, which is fine: the periodic sweep and the billing cycle find every stored fact again.
"""

from __future__ import annotations

import logging
import time

from django.db import connection, transaction

logger = logging.getLogger(__name__)


_paused_until = 0.0  # monotonic time before which this process does not try the broker again


def task_send(task_name: str, *, kwargs: dict, schema: str) -> None:
    """Send one task, never holding the caller: no result backend round trip (``ignore_result``),
    no publish retries, a short connect timeout, and after a failure no attempt for
    ENQUEUE_PAUSE_AFTER_FAILURE_SECONDS (a request after the first one does not even try)."""
    global _paused_until
    from django.conf import settings

    from revexos.celery import app

    if time.monotonic() < _paused_until:
        logger.info("broker paused after a failure: %s for %s left to the sweep", task_name, schema)
        return
    try:
        app.send_task(task_name, kwargs=kwargs, headers={"_schema_name": schema}, retry=False, ignore_result=True)
    except Exception:  # broker down: the sweep picks the work up later
        _paused_until = time.monotonic() + settings.ENQUEUE_PAUSE_AFTER_FAILURE_SECONDS
        logger.warning("could not enqueue %s for %s; the sweep will pick it up", task_name, schema, exc_info=True)


def _in_sandbox() -> bool:
    """An audit sandbox holds a prospect's data for comparison only: nothing in it is ever billed,
    sent or scanned in the background, so no task is enqueued from it."""
    return getattr(getattr(connection, "tenant", None), "sandbox_of_id", None) is not None


def task_enqueue_on_commit(task_name: str, **kwargs) -> None:
    if _in_sandbox():
        return
    schema = connection.schema_name
    transaction.on_commit(lambda: task_send(task_name, kwargs=kwargs, schema=schema))
