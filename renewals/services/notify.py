"""E-mails about renewals: alert raised, escalation, auto-renewal, and the daily digest.

Sent after the transaction that caused them commits (callers use ``transaction.on_commit``), so a
rolled-back cycle never tells anyone about an alert that does not exist. A failed send is logged and
does not undo the renewal work.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import date

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.urls import reverse

from revexos.money import format_money

logger = logging.getLogger(__name__)


def _alerts(ids):
    from renewals.models import RenewalAlert

    return list(
        RenewalAlert.objects.filter(pk__in=ids)
        .select_related("contract", "contract__customer", "owner")
        .order_by("notice_deadline", "-value_at_stake", "pk")
    )


def _send(
    *, to: list[str], subject_template: str, body_template: str, context: dict, cc: list[str] | None = None
) -> bool:
    from renewals.services._common import current_tenant, tenant_url

    context = {"tenant": current_tenant(), "queue_url": tenant_url(reverse("renewals:queue")), **context}
    subject = " ".join(render_to_string(subject_template, context).split())
    body = render_to_string(body_template, context)
    try:
        EmailMessage(subject=subject, body=body, from_email=settings.DEFAULT_FROM_EMAIL, to=to, cc=cc or []).send()
    except Exception:  # mail is best effort; the alert is in the queue either way
        logger.exception("renewal e-mail %r to %s failed", subject, to)
        return False
    return True


def deadline_state(alert, as_of: date) -> tuple[str, str]:
    """Where the notice deadline stands on ``as_of``: ("passed" | "today" | "near" | "ahead", words).

    Every renewal e-mail (raised, escalated, digest) says it the same way, so no e-mail calls a
    deadline "near" that has passed, and the digest and the escalation never disagree.
    """
    left = (alert.notice_deadline - as_of).days
    if left < 0:
        days = -left
        consequence = (
            "the contract renews automatically unless the customer agrees otherwise"
            if alert.contract.auto_renew
            else "the contract ends on its end date unless renewed"
        )
        return "passed", f"notice deadline passed {days} day{'s' if days != 1 else ''} ago ({consequence})"
    if left == 0:
        return "today", "notice deadline today"
    if left <= 7:
        return "near", f"notice deadline in {left} day{'s' if left != 1 else ''}"
    return "ahead", f"notice deadline in {left} days"


def _value_words(alert) -> str:
    money = f"{format_money(alert.value_at_stake, alert.currency)} {alert.currency}"
    if alert.value_basis == "term":
        parts = ", ".join(p["what"] for p in alert.value_parts or []) or "nothing billed yet"
        return f"{money} over the term ({parts})"
    return f"{money} a year"


def _rows(alerts, as_of: date) -> list[dict]:
    rows = []
    for a in alerts:
        state, words = deadline_state(a, as_of)
        rows.append(
            {
                "alert": a,
                "number": a.contract.number,
                "customer": a.contract.customer.legal_name,
                "value": _value_words(a),
                "currency": a.currency,
                "deadline_state": state,
                "deadline": words,
            }
        )
    return rows


def _deadline_counts(rows: list[dict]) -> dict[str, int]:
    counts = {"passed": 0, "today": 0, "near": 0, "ahead": 0}
    for row in rows:
        counts[row["deadline_state"]] += 1
    return counts


def _today() -> date:
    from renewals.services._common import tenant_today

    return tenant_today()


def _deadline_context(rows: list[dict]) -> dict:
    counts = _deadline_counts(rows)
    return {"rows": rows, "count": len(rows), "passed": counts["passed"], "due_soon": counts["today"] + counts["near"]}


def alerts_raised_notify(*, alert_ids: list[int], as_of: date | None = None) -> int:
    """One e-mail per owner listing the alerts just raised for them. Returns e-mails sent."""
    as_of = as_of or _today()
    by_owner = defaultdict(list)
    for alert in _alerts(alert_ids):
        if alert.owner is not None and alert.owner.is_active:
            by_owner[alert.owner].append(alert)
    sent = 0
    for owner, alerts in by_owner.items():
        sent += _send(
            to=[owner.email],
            subject_template="renewals/email/raised_subject.txt",
            body_template="renewals/email/raised.txt",
            context={"owner": owner, "rows": _rows(alerts, as_of), "count": len(alerts)},
        )
    return sent


def alerts_escalated_notify(*, alert_ids: list[int], as_of: date | None = None) -> int:
    """The owner, with the tenant's admins in copy: the notice deadline is near or past and nobody
    decided. The subject says which: deadlines passed are never called near."""
    from revexos.accounts.models import Role, User

    as_of = as_of or _today()
    admins = list(User.objects.filter(role=Role.ADMIN, is_active=True).values_list("email", flat=True))
    by_owner = defaultdict(list)
    for alert in _alerts(alert_ids):
        by_owner[alert.owner if alert.owner is not None and alert.owner.is_active else None].append(alert)
    sent = 0
    for owner, alerts in by_owner.items():
        to = [owner.email] if owner is not None else admins
        if not to:
            continue
        sent += _send(
            to=to,
            cc=[e for e in admins if e not in to],
            subject_template="renewals/email/escalated_subject.txt",
            body_template="renewals/email/escalated.txt",
            context={"owner": owner, **_deadline_context(_rows(alerts, as_of))},
        )
    return sent


def auto_renewed_notify(*, alert_id: int) -> int:
    alerts = _alerts([alert_id])
    if not alerts or alerts[0].owner is None or not alerts[0].owner.is_active:
        return 0
    alert = alerts[0]
    applied = (
        alert.decisions.filter(decision="auto_renewed")
        .order_by("-decided_at")
        .values_list("proposed_terms", flat=True)
        .first()
    )
    return int(
        _send(
            to=[alert.owner.email],
            subject_template="renewals/email/auto_renewed_subject.txt",
            body_template="renewals/email/auto_renewed.txt",
            context={"alert": alert, "contract": alert.contract, "owner": alert.owner, "terms": applied or {}},
        )
    )


def renewal_digest_send(*, as_of: date) -> list[int]:
    """The daily digest: each owner's alerts that need action, most urgent first. Once per owner and day.

    Returns the ids of the users e-mailed.
    """
    from renewals.models import RenewalAlert, RenewalDigestSent, RenewalStatus
    from revexos.accounts.models import User

    actionable = Q(status__in=[RenewalStatus.OPEN, RenewalStatus.RENEWING, RenewalStatus.CHURNING]) | Q(
        status=RenewalStatus.SNOOZED, snoozed_until__lte=as_of
    )
    alerts = list(
        RenewalAlert.objects.filter(actionable, owner__isnull=False, owner__is_active=True)
        .exclude(owner__in=RenewalDigestSent.objects.filter(sent_on=as_of).values("user"))
        .select_related("contract", "contract__customer", "owner")
        .order_by("owner_id", "notice_deadline", "-value_at_stake", "pk")
    )
    by_owner: dict[User, list] = defaultdict(list)
    for alert in alerts:
        by_owner[alert.owner].append(alert)
    sent: list[int] = []
    for owner, owned in by_owner.items():
        try:
            with transaction.atomic():
                RenewalDigestSent.objects.create(user=owner, sent_on=as_of, alert_count=len(owned))
        except IntegrityError:
            continue  # another worker sent today's digest a moment ago
        escalated = [a for a in owned if a.escalated_at is not None]
        ok = _send(
            to=[owner.email],
            subject_template="renewals/email/digest_subject.txt",
            body_template="renewals/email/digest.txt",
            context={
                "owner": owner,
                **_deadline_context(_rows(owned, as_of)),
                "escalated": len(escalated),
                "as_of": as_of,
            },
        )
        if ok:
            sent.append(owner.pk)
    return sent
