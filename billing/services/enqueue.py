"""Enqueue tasks after commit, never before, and never fail the request because of the broker.

A fact is acknowledged once it is committed; if the broker is down at that moment the task is
lost, which is fine: the periodic sweep and the billing cycle find every stored fact again.
"""

from __future__ import annotations

import logging

from django.db import connection, transaction

logger = logging.getLogger(__name__)


def task_send(task_name: str, *, kwargs: dict, schema: str) -> None:
    from revexos.celery import app

    try:
        app.send_task(task_name, kwargs=kwargs, headers={"_schema_name": schema}, retry=False)
    except Exception:  # broker down: the sweep picks the work up later
        logger.warning("could not enqueue %s for %s; the sweep will pick it up", task_name, schema, exc_info=True)


def task_enqueue_on_commit(task_name: str, **kwargs) -> None:
    schema = connection.schema_name
    transaction.on_commit(lambda: task_send(task_name, kwargs=kwargs, schema=schema))
