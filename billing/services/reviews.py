"""Billing review tasks: things a person in finance must decide (DESIGN.md §3, trigger table)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from billing.models import BillingReviewTask, ReviewTaskStatus


def review_task_raise(
    *,
    kind: str,
    dedupe_key: str,
    title: str,
    detail: str = "",
    contract_id: int | None = None,
    invoice_id: int | None = None,
    reopen: bool = False,
) -> bool:
    """Open a review task once per ``dedupe_key``; True when this call created it.

    Idempotent by the unique dedupe key: a redelivered event or a rerun never raises the same task
    twice, even concurrently (the second insert waits for the first and then fails the unique index).
    With ``reopen`` the existing task takes the new detail and is opened again if it was resolved
    (a held draft that fails again after someone resolved its task).
    """
    try:
        with transaction.atomic():
            BillingReviewTask.objects.create(
                kind=kind,
                dedupe_key=dedupe_key[:200],
                title=title[:300],
                detail=detail,
                contract_id=contract_id,
                invoice_id=invoice_id,
            )
    except IntegrityError:
        if reopen:
            BillingReviewTask.objects.filter(dedupe_key=dedupe_key[:200]).update(
                detail=detail,
                status=ReviewTaskStatus.OPEN,
                resolved_at=None,
            )
        return False
    return True


def review_tasks_resolve_for_invoice(*, invoice_id: int, kind: str, resolution: str) -> int:
    """Close the open tasks of one kind about an invoice (the invoice no longer needs a person)."""
    return BillingReviewTask.objects.filter(invoice_id=invoice_id, kind=kind, status=ReviewTaskStatus.OPEN).update(
        status=ReviewTaskStatus.RESOLVED,
        resolution=resolution,
        resolved_at=timezone.now(),
    )


def review_task_assign(*, task_id: int, assignee_id: int | None, user=None) -> BillingReviewTask:
    """Give a task to a person (or take it back with None). Only active users of the tenant."""
    from revexos.accounts.models import User

    with transaction.atomic():
        task = BillingReviewTask.objects.select_for_update().get(pk=task_id)
        if assignee_id is not None and not User.objects.filter(pk=assignee_id, is_active=True).exists():
            raise ValidationError({"assignee": ["Choose an active user of this workspace."]})
        task.assignee_id = assignee_id
        task.save(update_fields=["assignee"])
    return task


def review_task_resolve(*, task_id: int, note: str, user=None) -> BillingReviewTask:
    """Resolve a task with a note saying what was decided (kept with the task)."""
    note = (note or "").strip()
    if not note:
        raise ValidationError({"note": ["Say what you decided or did; the note stays with the task."]})
    with transaction.atomic():
        task = BillingReviewTask.objects.select_for_update().get(pk=task_id)
        if task.status == ReviewTaskStatus.RESOLVED:
            raise ValidationError({"status": ["This task is already resolved."]})
        who = (user.get_full_name() or user.email) if user is not None else "system"
        task.status = ReviewTaskStatus.RESOLVED
        task.resolution = f"{note}\n— {who}"
        task.resolved_at = timezone.now()
        if task.assignee_id is None and user is not None:
            task.assignee = user
        task.save(update_fields=["status", "resolution", "resolved_at", "assignee"])
    return task


def review_tasks_resolve(*, task_ids: list[int], note: str, user=None) -> int:
    """Resolve several open tasks with one note (a batch of findings settled the same way): one
    UPDATE. Tasks already resolved are left as they are. Returns how many were resolved."""
    note = (note or "").strip()
    if not note:
        raise ValidationError({"note": ["Say what you decided or did; the note stays with each task."]})
    if not task_ids:
        raise ValidationError({"task": ["Select the tasks to resolve."]})
    who = (user.get_full_name() or user.email) if user is not None else "system"
    tasks = BillingReviewTask.objects.filter(pk__in=task_ids, status=ReviewTaskStatus.OPEN)
    with transaction.atomic():
        if user is not None:
            tasks.filter(assignee__isnull=True).update(assignee=user)
        return tasks.update(status=ReviewTaskStatus.RESOLVED, resolution=f"{note}\n— {who}", resolved_at=timezone.now())


def review_tasks_assign(*, task_ids: list[int], assignee_id: int | None, user=None) -> int:
    """Give several open tasks to one person (or back to nobody): one UPDATE."""
    from revexos.accounts.models import User

    if not task_ids:
        raise ValidationError({"task": ["Select the tasks to assign."]})
    if assignee_id is not None and not User.objects.filter(pk=assignee_id, is_active=True).exists():
        raise ValidationError({"assignee": ["Choose an active user of this workspace."]})
    return BillingReviewTask.objects.filter(pk__in=task_ids, status=ReviewTaskStatus.OPEN).update(
        assignee_id=assignee_id
    )
