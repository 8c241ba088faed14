"""Leakage scan and the decisions a person takes on a finding (DESIGN.md §4 leakage rules).

``leakage_scan`` runs the rules of ``insights/leakage.py`` and reconciles their result with the
stored findings by fingerprint, in one transaction under a per-tenant advisory lock (two scans at
once queue; the second sees the first's rows):

* a new fingerprint → a new open finding and ONE billing review task (deduped by the fingerprint);
* a known fingerprint → amount, evidence and last seen refreshed; a finding resolved earlier whose
  cause is back is opened again (its review task too); a dismissed one stays dismissed;
* an open or acknowledged finding the rules no longer return → resolved (its cause was fixed),
  and its review task resolved with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from billing.models import BillingReviewTask, ReviewTaskKind, ReviewTaskStatus
from contracts.models import Contract
from insights.leakage import Candidate, ScanContext, leakage_candidates
from insights.models import LIVE_STATUSES, FindingStatus, LeakageFinding
from revexos.dates import current_tenant, tenant_today
from revexos.money import format_money
from revexos.webhooks.publish import events_publish_many

REFRESHED = (
    "title",
    "amount",
    "currency",
    "evidence",
    "period_start",
    "period_end",
    "invoice",
    "customer",
    "last_seen_at",
    "last_seen_on",
)


@dataclass
class ScanResult:
    as_of: date
    found: int = 0
    created: int = 0
    updated: int = 0
    reopened: int = 0
    resolved: int = 0
    review_tasks_opened: int = 0

    def as_dict(self) -> dict:
        return {
            "as_of": self.as_of.isoformat(),
            "findings": self.found,
            "created": self.created,
            "updated": self.updated,
            "reopened": self.reopened,
            "resolved": self.resolved,
            "review_tasks_opened": self.review_tasks_opened,
        }


def _lock() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"leakage:{connection.schema_name}"])


def _task_dedupe_key(fingerprint: str) -> str:
    return f"leakage:{fingerprint}"[:200]


def _task_detail(c: Candidate) -> str:
    return (
        f"Estimated {format_money(c.amount, c.currency)} {c.currency}. {c.basis}.\n"
        "Open Insights → Leakage for the evidence; acknowledge, fix the cause (the next scan resolves it) or dismiss it with a reason."
    )


def _findings_publish(findings) -> None:
    """Announce new findings to webhook endpoints (one event per finding, set-based)."""
    numbers = dict(
        Contract.objects.filter(pk__in={f.contract_id for f in findings if f.contract_id}).values_list("pk", "number")
    )
    events_publish_many(
        "leakage_finding.created",
        [
            (
                {
                    "leakage_finding": {
                        "id": str(f.pk),
                        "rule": f.rule,
                        "title": f.title,
                        "contract": numbers.get(f.contract_id),
                        "period_start": f.period_start.isoformat() if f.period_start else None,
                        "period_end": f.period_end.isoformat() if f.period_end else None,
                        "amount": str(f.amount),
                        "currency": f.currency,
                    }
                },
                f"leakage_finding.created:{f.pk}",
            )
            for f in findings
        ],
    )


def leakage_scan(
    *, as_of: date | None = None, contract_ids: list[int] | None = None, rules: list[str] | None = None
) -> ScanResult:
    """Scan for leakage as of ``as_of`` (the tenant's today by default) and reconcile the findings.

    ``contract_ids`` and ``rules`` narrow the scan; only findings inside that scope can be resolved by it.
    """
    as_of = as_of or tenant_today()
    tenant = current_tenant()
    from zoneinfo import ZoneInfo

    ctx = ScanContext(as_of=as_of, zone=ZoneInfo(tenant.time_zone or "UTC"), contract_ids=contract_ids)
    result = ScanResult(as_of=as_of)
    now = timezone.now()
    with transaction.atomic():
        _lock()
        candidates = {c.fingerprint: c for c in leakage_candidates(ctx, rules)}
        result.found = len(candidates)
        scope = LeakageFinding.objects.all()
        if rules:
            scope = scope.filter(rule__in=rules)
        if contract_ids is not None:
            scope = scope.filter(contract_id__in=contract_ids)
        existing = {f.fingerprint: f for f in LeakageFinding.objects.filter(fingerprint__in=list(candidates))}

        new: list[LeakageFinding] = []
        changed: list[LeakageFinding] = []
        touched: list[int] = []
        reopened_tasks: list[int] = []
        for fingerprint, c in candidates.items():
            finding = existing.get(fingerprint)
            if finding is None:
                new.append(
                    LeakageFinding(
                        rule=c.rule,
                        fingerprint=fingerprint,
                        contract_id=c.contract_id,
                        customer_id=c.customer_id,
                        invoice_id=c.invoice_id,
                        title=c.title[:300],
                        period_start=c.period_start,
                        period_end=c.period_end,
                        amount=c.amount,
                        currency=c.currency,
                        evidence=c.evidence,
                        status=FindingStatus.OPEN,
                        first_seen_at=now,
                        last_seen_at=now,
                        first_seen_on=as_of,
                        last_seen_on=as_of,
                    )
                )
                continue
            same = (
                finding.title == c.title[:300]
                and finding.amount == c.amount
                and finding.currency == c.currency
                and finding.evidence == c.evidence
                and finding.period_start == c.period_start
                and finding.period_end == c.period_end
                and finding.invoice_id == c.invoice_id
                and finding.customer_id == c.customer_id
            )
            if same and finding.status != FindingStatus.RESOLVED:
                touched.append(finding.pk)  # nothing changed but "last seen": one UPDATE for all of them
                continue
            finding.title, finding.amount, finding.currency, finding.evidence = (
                c.title[:300],
                c.amount,
                c.currency,
                c.evidence,
            )
            finding.period_start, finding.period_end, finding.invoice_id, finding.customer_id = (
                c.period_start,
                c.period_end,
                c.invoice_id,
                c.customer_id,
            )
            finding.last_seen_at, finding.last_seen_on = now, as_of
            if finding.status == FindingStatus.RESOLVED:
                # The cause is back (or was never fixed after a manual resolve): open it again.
                finding.status, finding.resolved_at = FindingStatus.OPEN, None
                finding.status_note = f"Found again on the scan of {as_of:%-d %b %Y}."
                result.reopened += 1
                if finding.review_task_id:
                    reopened_tasks.append(finding.review_task_id)
            changed.append(finding)
        if new:
            LeakageFinding.objects.bulk_create(new)
            result.created = len(new)
            _findings_publish(new)
        if changed:
            LeakageFinding.objects.bulk_update(
                changed, [*REFRESHED, "status", "resolved_at", "status_note"], batch_size=500
            )
        if touched:
            LeakageFinding.objects.filter(pk__in=touched).update(last_seen_at=now, last_seen_on=as_of)
        result.updated = len(changed) + len(touched)
        if reopened_tasks:
            BillingReviewTask.objects.filter(pk__in=reopened_tasks).update(
                status=ReviewTaskStatus.OPEN, resolved_at=None
            )

        # One review task per new finding, deduped by fingerprint (a rerun or a concurrent scan adds none).
        if new:
            tasks = [
                BillingReviewTask(
                    kind=ReviewTaskKind.LEAKAGE,
                    dedupe_key=_task_dedupe_key(f.fingerprint),
                    contract_id=f.contract_id,
                    invoice_id=f.invoice_id,
                    title=f"Leakage {f.rule}: {f.title}"[:300],
                    detail=_task_detail(candidates[f.fingerprint]),
                )
                for f in new
            ]
            before = BillingReviewTask.objects.filter(dedupe_key__in=[t.dedupe_key for t in tasks]).count()
            BillingReviewTask.objects.bulk_create(tasks, ignore_conflicts=True, batch_size=500)
            result.review_tasks_opened = len(tasks) - before
            task_ids = dict(
                BillingReviewTask.objects.filter(dedupe_key__in=[t.dedupe_key for t in tasks]).values_list(
                    "dedupe_key", "pk"
                )
            )
            linked = []
            for f in LeakageFinding.objects.filter(fingerprint__in=[f.fingerprint for f in new]):
                f.review_task_id = task_ids.get(_task_dedupe_key(f.fingerprint))
                linked.append(f)
            LeakageFinding.objects.bulk_update(linked, ["review_task"], batch_size=500)

        # Causes gone: resolve what the rules no longer return.
        gone = scope.filter(status__in=LIVE_STATUSES).exclude(fingerprint__in=list(candidates))
        gone_tasks = list(gone.exclude(review_task__isnull=True).values_list("review_task_id", flat=True))
        result.resolved = gone.update(
            status=FindingStatus.RESOLVED,
            resolved_at=now,
            status_note=f"The cause was gone on the scan of {as_of:%-d %b %Y}.",
            status_changed_at=now,
            status_changed_by=None,
        )
        if gone_tasks:
            BillingReviewTask.objects.filter(pk__in=gone_tasks, status=ReviewTaskStatus.OPEN).update(
                status=ReviewTaskStatus.RESOLVED,
                resolved_at=now,
                resolution=f"Resolved by the leakage scan of {as_of:%-d %b %Y}: the cause is gone.",
            )
    return result


# --------------------------------------------------------------------------- a person's decisions


def _finding_for_update(finding_id: int) -> LeakageFinding:
    return LeakageFinding.objects.select_for_update().get(pk=finding_id)


def _who(user) -> str:
    return (user.get_full_name() or user.email) if user is not None else "system"


def leakage_finding_acknowledge(*, finding_id: int, user=None, note: str = "") -> LeakageFinding:
    """Someone is on it: the finding stays live (a scan still resolves it when the cause is gone)."""
    with transaction.atomic():
        finding = _finding_for_update(finding_id)
        if finding.status != FindingStatus.OPEN:
            raise ValidationError(
                {
                    "status": [
                        f"Only open findings can be acknowledged; this one is {finding.get_status_display().lower()}."
                    ]
                }
            )
        finding.status, finding.status_note = FindingStatus.ACKNOWLEDGED, (note or "").strip()
        finding.status_changed_by, finding.status_changed_at = user, timezone.now()
        finding.save(update_fields=["status", "status_note", "status_changed_by", "status_changed_at"])
    return finding


def leakage_finding_resolve(*, finding_id: int, user=None, note: str) -> LeakageFinding:
    """The cause was fixed. If it was not, the next scan finds it again and reopens the finding."""
    note = (note or "").strip()
    if not note:
        raise ValidationError({"note": ["Say what was done to fix it (e.g. the invoice that billed it)."]})
    with transaction.atomic():
        finding = _finding_for_update(finding_id)
        if finding.status not in LIVE_STATUSES:
            raise ValidationError({"status": [f"This finding is already {finding.get_status_display().lower()}."]})
        now = timezone.now()
        finding.status, finding.status_note, finding.resolved_at = (
            FindingStatus.RESOLVED,
            f"{note}\n— {_who(user)}",
            now,
        )
        finding.status_changed_by, finding.status_changed_at = user, now
        finding.save(update_fields=["status", "status_note", "resolved_at", "status_changed_by", "status_changed_at"])
        _close_task(finding, f"Leakage finding resolved: {note}\n— {_who(user)}")
    return finding


def leakage_finding_dismiss(*, finding_id: int, user=None, reason: str) -> LeakageFinding:
    """Not a leak (agreed write-off, billed elsewhere …): the finding stays dismissed on every rescan."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": ["Say why this is not a leak; the reason stays with the finding."]})
    with transaction.atomic():
        finding = _finding_for_update(finding_id)
        if finding.status == FindingStatus.DISMISSED:
            raise ValidationError({"status": ["This finding is already dismissed."]})
        now = timezone.now()
        finding.status, finding.status_note = FindingStatus.DISMISSED, f"{reason[:1000]}\n— {_who(user)}"
        finding.status_changed_by, finding.status_changed_at = user, now
        finding.save(update_fields=["status", "status_note", "status_changed_by", "status_changed_at"])
        _close_task(finding, f"Leakage finding dismissed: {reason}\n— {_who(user)}")
    return finding


def _close_task(finding: LeakageFinding, resolution: str) -> None:
    if finding.review_task_id:
        BillingReviewTask.objects.filter(pk=finding.review_task_id, status=ReviewTaskStatus.OPEN).update(
            status=ReviewTaskStatus.RESOLVED,
            resolution=resolution,
            resolved_at=timezone.now(),
        )
