"""The lifecycle of exceptions on the beat and in POST /api/v1/runs (DESIGN.md §4 trigger table).

Status is a function of the tenant-local date (and, for discounts with ``max_cycles``, of the
cycles used), so the step can run late, twice, or concurrently and reach the same state:

    scheduled  before the start date
    active     from the start date to the end date (inclusive) while cycles remain
    expired    after the end date, or once every cycle is used
    revoked    by a person; final

Transitions only move forward (scheduled → active → expired): a run as of a past date never
revives what a later run expired; only an explicit extension does. Each transition is logged in
``ExceptionEvent`` with the day it took effect, so a beat that was down for three days logs
"activated 1 Mar" and "expired 31 Mar" correctly when it comes back. Application to invoices does
not wait for the status: billing reads the dates, so an invoice is right whenever the beat runs.
"""

from __future__ import annotations

from datetime import date, timedelta

from django.db import transaction
from django.db.models import Count

from discounts.models import (
    Credit,
    CreditStatus,
    Discount,
    EventAction,
    ExceptionEvent,
    ExceptionStatus,
    PriceOverride,
)
from revexos.webhooks.publish import event_publish

_RANK = {ExceptionStatus.SCHEDULED: 0, ExceptionStatus.ACTIVE: 1, ExceptionStatus.EXPIRED: 2}


def discount_status_on(
    *, start: date, end: date | None, on: date, max_cycles: int | None = None, cycles_used: int = 0
) -> str:
    """The status a (not revoked) discount or override has on ``on``."""
    if max_cycles is not None and cycles_used >= max_cycles:
        return ExceptionStatus.EXPIRED
    if end is not None and on > end:
        return ExceptionStatus.EXPIRED
    if on < start:
        return ExceptionStatus.SCHEDULED
    return ExceptionStatus.ACTIVE


def _transitions(current: str, target: str, *, start: date, end: date | None, on: date) -> list[tuple[str, str, date]]:
    """The steps from ``current`` to ``target`` with the day each took effect (forward only)."""
    steps: list[tuple[str, str, date]] = []
    if _RANK.get(target, -1) <= _RANK.get(current, 99):
        return steps
    if current == ExceptionStatus.SCHEDULED and target == ExceptionStatus.EXPIRED and on >= start:
        steps.append((EventAction.ACTIVATED, ExceptionStatus.ACTIVE, start))
        current = ExceptionStatus.ACTIVE
    if target == ExceptionStatus.ACTIVE:
        steps.append((EventAction.ACTIVATED, ExceptionStatus.ACTIVE, start))
    elif target == ExceptionStatus.EXPIRED:
        day = end + timedelta(days=1) if end is not None and on > end else on
        steps.append((EventAction.EXPIRED, ExceptionStatus.EXPIRED, day))
    return steps


def _cycles_count():
    return Count("applications__cycle_key", distinct=True)


def discount_expired_publish(discount, *, reason: str, on) -> None:
    """Announce a discount's expiry to webhook endpoints (inside the expiring transaction)."""
    event_publish(
        "discount.expired",
        {
            "discount": {
                "id": str(discount.pk),
                "reference": discount.reference,
                "kind": discount.kind,
                "value": str(discount.value),
                "contract": discount.contract.number if discount.contract_id else None,
                "customer": discount.customer.external_id if discount.customer_id else None,
                "expired_on": on.isoformat(),
                "reason": reason,
            }
        },
        key=f"discount.expired:{discount.pk}",
    )


def discounts_used_up_expire(*, discounts: list[Discount], used: dict[int, set[str]], result, invoice) -> None:
    """A discount whose last cycle this invoice used has run its course: say so now, not at the next beat.

    Called by billing when it applies discounts to an invoice (``result.cycles_by_discount()`` are
    the cycles this invoice used, ``used`` those used before it).
    """
    by_discount = result.cycles_by_discount()
    for discount in discounts:
        if discount.max_cycles is None or discount.pk not in by_discount:
            continue
        total_used = used.get(discount.pk, set()) | by_discount[discount.pk]
        if len(total_used) >= discount.max_cycles and discount.status != ExceptionStatus.EXPIRED:
            previous = discount.status
            discount.status = ExceptionStatus.EXPIRED
            discount.save(update_fields=["status"])
            reason = f"{discount.max_cycles} of {discount.max_cycles} billing cycles used"
            ExceptionEvent.objects.create(
                discount=discount,
                action=EventAction.CYCLES_USED,
                from_status=previous,
                to_status=discount.status,
                effective_on=invoice.billing_date,
                actor_label="billing",
                reason=reason,
                detail={"invoice": invoice.pk, "cycles": sorted(total_used)},
            )
            discount_expired_publish(discount, reason=reason, on=invoice.billing_date)


def _discounts_step(*, as_of: date, actor_label: str) -> dict:
    counts = {"discounts_activated": 0, "discounts_expired": 0}
    candidates = (
        Discount.objects.filter(status__in=[ExceptionStatus.SCHEDULED, ExceptionStatus.ACTIVE])
        .annotate(cycles=_cycles_count())
        .values_list("pk", "status", "start_date", "end_date", "max_cycles", "cycles")
    )
    for pk, status, start, end, max_cycles, cycles in candidates:
        target = discount_status_on(start=start, end=end, on=as_of, max_cycles=max_cycles, cycles_used=cycles)
        if _RANK[target] <= _RANK[status]:
            continue
        with transaction.atomic():
            discount = Discount.objects.select_for_update().get(pk=pk)  # the row decides; a twin run waits here
            for action, new_status, day in _transitions(discount.status, target, start=start, end=end, on=as_of):
                previous = discount.status
                discount.status = new_status
                discount.save(update_fields=["status"])
                reason = ""
                if action == EventAction.EXPIRED and max_cycles is not None and cycles >= max_cycles:
                    action, reason = EventAction.CYCLES_USED, f"{cycles} of {max_cycles} billing cycles used"
                elif action == EventAction.EXPIRED:
                    reason = f"End date {end:%-d %b %Y} passed"
                else:
                    reason = f"Start date {start:%-d %b %Y} reached"
                ExceptionEvent.objects.create(
                    discount=discount,
                    action=action,
                    from_status=previous,
                    to_status=new_status,
                    effective_on=day,
                    actor_label=actor_label,
                    reason=reason,
                    detail={"as_of": as_of.isoformat()},
                )
                counts["discounts_activated" if new_status == ExceptionStatus.ACTIVE else "discounts_expired"] += 1
                if new_status == ExceptionStatus.EXPIRED:
                    discount_expired_publish(discount, reason=reason, on=day)
    return counts


def _overrides_step(*, as_of: date, actor_label: str) -> dict:
    counts = {"overrides_activated": 0, "overrides_expired": 0}
    candidates = PriceOverride.objects.filter(
        status__in=[ExceptionStatus.SCHEDULED, ExceptionStatus.ACTIVE]
    ).values_list("pk", "status", "start_date", "end_date")
    for pk, status, start, end in candidates:
        target = discount_status_on(start=start, end=end, on=as_of)
        if _RANK[target] <= _RANK[status]:
            continue
        with transaction.atomic():
            override = PriceOverride.objects.select_for_update().get(pk=pk)
            for action, new_status, day in _transitions(override.status, target, start=start, end=end, on=as_of):
                previous = override.status
                override.status = new_status
                override.save(update_fields=["status"])
                ExceptionEvent.objects.create(
                    price_override=override,
                    action=action,
                    from_status=previous,
                    to_status=new_status,
                    effective_on=day,
                    actor_label=actor_label,
                    detail={"as_of": as_of.isoformat()},
                    reason=f"End date {end:%-d %b %Y} passed"
                    if new_status == ExceptionStatus.EXPIRED
                    else f"Start date {start:%-d %b %Y} reached",
                )
                counts["overrides_activated" if new_status == ExceptionStatus.ACTIVE else "overrides_expired"] += 1
    return counts


def _credits_step(*, as_of: date, actor_label: str) -> dict:
    expired = 0
    due = Credit.objects.filter(status=CreditStatus.ACTIVE, expires_on__lt=as_of).values_list("pk", flat=True)
    for pk in due:
        with transaction.atomic():
            credit = Credit.objects.select_for_update().get(pk=pk)
            if credit.status != CreditStatus.ACTIVE or credit.expires_on is None or credit.expires_on >= as_of:
                continue
            credit.status = CreditStatus.EXPIRED
            credit.save(update_fields=["status"])
            ExceptionEvent.objects.create(
                credit=credit,
                action=EventAction.EXPIRED,
                from_status=CreditStatus.ACTIVE,
                to_status=CreditStatus.EXPIRED,
                effective_on=credit.expires_on + timedelta(days=1),
                actor_label=actor_label,
                reason=f"Expired on {credit.expires_on:%-d %b %Y} with {credit.balance.normalize():f} {credit.currency} unused",
                detail={"as_of": as_of.isoformat(), "balance_lapsed": str(credit.balance)},
            )
            expired += 1
    return {"credits_expired": expired}


def exceptions_lifecycle_run(*, as_of: date, actor_label: str = "beat") -> dict:
    """Activate and expire discounts and overrides, expire credits, as of the tenant-local ``as_of``."""
    summary: dict = {}
    summary.update(_discounts_step(as_of=as_of, actor_label=actor_label))
    summary.update(_overrides_step(as_of=as_of, actor_label=actor_label))
    summary.update(_credits_step(as_of=as_of, actor_label=actor_label))
    return summary


def status_after_change(obj, *, on: date) -> str:
    """Status of a discount or override right after a person changed its dates (extension)."""
    if obj.status == ExceptionStatus.REVOKED:
        return obj.status
    if isinstance(obj, Discount):
        used = obj.applications.values("cycle_key").distinct().count()
        return discount_status_on(
            start=obj.start_date, end=obj.end_date, on=on, max_cycles=obj.max_cycles, cycles_used=used
        )
    return discount_status_on(start=obj.start_date, end=obj.end_date, on=on)


__all__ = ["discount_status_on", "exceptions_lifecycle_run", "status_after_change"]
