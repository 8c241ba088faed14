"""Audits: accept the uploads (checked before anything is stored), re-run, share, and forget them.

Uploads (DESIGN.md §5.1): ``customers`` and ``contracts`` in the contracts CSV import formats,
``invoices`` as a Xero or QuickBooks Online invoice export, optional ``time_entries`` (Harvest or
Toggl CSV) and ``usage`` (see ``audits.formats``). Each is at most ``AUDIT_MAX_FILE_BYTES``. What can
be checked without the prospect's data in place — file types, columns, the whole invoice export,
the date format it needs — is checked here, so the person uploading hears it at once; row checks
that need the customers and contracts (references, amendments) run in the worker, in the sandbox,
and fail the audit with the same file/row/column messages, leaving nothing behind.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import date, timedelta

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from audits.models import Audit, AuditShareLink, AuditStatus
from billing.history_formats import ExportProblem, ExportRejected, history_export_parse, sniff_text
from billing.services.enqueue import task_enqueue_on_commit

FILE_KINDS: dict[str, tuple[bool, str]] = {
    # kind → (required, what it is); in the order the upload form asks for them
    "contracts": (True, "contracts CSV (the contracts import format)"),
    "invoices": (True, "invoice export from Xero or QuickBooks Online"),
    "time_entries": (False, "time entries exported from Harvest or Toggl"),
    "usage": (False, "usage CSV"),
    "customers": (False, "customers CSV (the customers import format)"),
}
FILE_HELP = {
    "contracts": "One row per price line. Extra columns for an audit: effective_from (amendments), delivered_on (milestones), discount_value and discount_end_date.",
    "invoices": "Xero: Business › Invoices › Export. QuickBooks Online: the invoice export with its line items.",
    "time_entries": "Harvest detailed time report or Toggl detailed report. Finds hours never billed.",
    "usage": "contract, metric, quantity, timestamp. Finds usage never billed and minimums not trued up.",
    "customers": "Without it, customers are made from the contracts and named as the invoices name them.",
}
TIME_FORMATS = ("harvest", "toggl")


@dataclass
class Upload:
    kind: str
    name: str
    data: bytes


class AuditRejected(Exception):
    """The uploads cannot be audited as they are; nothing was stored."""

    def __init__(self, problems: list[ExportProblem], *, needs_date_format: bool = False) -> None:
        super().__init__("; ".join(str(p) for p in problems[:3]))
        self.problems = problems
        self.needs_date_format = needs_date_format

    def by_field(self) -> dict[str, list[str]]:
        """The API's ``fields``: file kind (or ``name``, ``date_format``) → messages naming file, row and column."""
        fields: dict[str, list[str]] = {}
        for p in self.problems:
            kind, sep, _name = p.file.partition(": ")
            if kind in FILE_KINDS or kind in ("name", "date_format"):
                text = str(p)[len(kind) + 2 :] if sep else p.message
                fields.setdefault(kind, []).append(text)
            else:
                fields.setdefault("non_field_errors", []).append(str(p))
        if self.needs_date_format:
            fields.setdefault("date_format", []).append(
                "The invoice export's dates could be DD/MM/YYYY or MM/DD/YYYY; send date_format “dmy” or “mdy”."
            )
        return fields


def _label(kind: str, name: str) -> str:
    return f"{kind}: {name}"


def time_format_detect(text: str) -> str | None:
    """harvest or toggl from the header row (Harvest: Date + Hours; Toggl: Start date + Duration)."""
    header = {h.strip().lower() for h in (text.splitlines() or [""])[0].lstrip("\ufeff").split(",")}
    if "start date" in header and "duration" in header:
        return "toggl"
    if "date" in header and "hours" in header:
        return "harvest"
    return None


def audit_uploads_check(*, uploads: dict[str, Upload], date_format: str = "", default_currency: str = "") -> dict:
    """Every problem with the uploads, or what the worker needs to know (the invoice export's range)."""
    from contracts.services.imports import import_file_problems

    problems: list[ExportProblem] = []
    needs_date_format = False
    facts: dict = {}
    limit = settings.AUDIT_MAX_FILE_BYTES
    for kind, (required, what) in FILE_KINDS.items():
        upload = uploads.get(kind)
        if upload is None:
            if required:
                problems.append(ExportProblem(kind, f"Upload the {what}."))
            continue
        label = _label(kind, upload.name)
        if len(upload.data) > limit:
            problems.append(ExportProblem(label, f"The file is larger than {limit // (1024 * 1024)} MB."))
            continue
        if kind == "invoices":
            try:
                parsed = history_export_parse(
                    raw=upload.data,
                    file_name=label,
                    date_format=date_format or None,
                    default_currency=default_currency or None,
                )
            except ExportRejected as exc:
                problems.extend(exc.problems)
                needs_date_format = needs_date_format or exc.needs_date_format
                continue
            dates = [i.issue_date for i in parsed.invoices]
            facts.update(
                source=parsed.source,
                first_invoice=min(dates),
                last_invoice=max(dates),
                invoices=len(parsed.invoices),
                date_format=parsed.date_format or "",
            )
            continue
        try:
            text = sniff_text(upload.data, label)
        except ExportRejected as exc:
            problems.extend(exc.problems)
            continue
        if kind in ("customers", "contracts"):
            problems.extend(ExportProblem(label, message) for message in import_file_problems(text=text, what=kind))
        elif kind == "time_entries":
            if time_format_detect(text) is None:
                problems.append(
                    ExportProblem(
                        label,
                        "The columns are not those of a Harvest detailed time export (Date, Hours, …) or a Toggl detailed report (Start date, Duration, …).",
                        1,
                    )
                )
        elif kind == "usage":
            from audits.formats import usage_csv_parse

            problems.extend(usage_csv_parse(text=text, file_name=label).problems)
    if problems or needs_date_format:
        raise AuditRejected(problems, needs_date_format=needs_date_format)
    return facts


def audit_create(
    *,
    name: str,
    uploads: dict[str, Upload],
    as_of: date | None = None,
    history_from: date | None = None,
    date_format: str = "",
    default_currency: str = "",
    user=None,
    via: str = "ui",
) -> Audit:
    """Check the uploads, store them under the tenant's folder and queue the audit for a worker."""
    name = (name or "").strip()
    problems = []
    if not name:
        problems.append(ExportProblem("name", "Say whose revenue cycle this audit is about (e.g. the company's name)."))
    elif len(name) > 200:
        problems.append(ExportProblem("name", "Use at most 200 characters."))
    if date_format not in ("", "dmy", "mdy"):
        problems.append(ExportProblem("date_format", "Use dmy (DD/MM/YYYY) or mdy (MM/DD/YYYY)."))
        date_format = ""
    if problems:
        raise AuditRejected(problems)
    facts = audit_uploads_check(uploads=uploads, date_format=date_format, default_currency=default_currency)
    with transaction.atomic():
        audit = Audit.objects.create(
            name=name,
            as_of=as_of,
            history_from=history_from,
            date_format=facts.get("date_format", date_format),
            default_currency=default_currency or "",
            created_by=user if getattr(user, "pk", None) else None,
            created_via=via,
            expires_at=timezone.now() + timedelta(days=settings.AUDIT_RETENTION_DAYS),
            stage="Waiting for a worker",
        )
        files = {}
        for kind, upload in uploads.items():
            path = default_storage.save(f"audits/{audit.pk}/{kind}.csv", ContentFile(upload.data))
            files[kind] = {"name": upload.name[:200], "path": path, "size": len(upload.data)}
        audit.files = files
        audit.save(update_fields=["files"])
        task_enqueue_on_commit("audits.tasks.audit_process", audit_id=str(audit.pk))
    return audit


def audit_rerun(*, audit: Audit) -> Audit:
    """Process the same uploads again (the report is rebuilt from scratch; the same files give the same report)."""
    if audit.status == AuditStatus.EXPIRED:
        raise ValueError("This audit's files were deleted after its retention period.")
    with transaction.atomic():
        Audit.objects.filter(pk=audit.pk).update(
            status=AuditStatus.QUEUED, progress=0, stage="Waiting for a worker", errors=[]
        )
        task_enqueue_on_commit("audits.tasks.audit_process", audit_id=str(audit.pk))
    audit.refresh_from_db()
    return audit


# --------------------------------------------------------------------------- retention


def audit_purge(*, audit: Audit) -> None:
    """Delete the sandbox schema, the uploads, the findings and the report; keep the audit's name and dates."""
    from revexos.tenancy.services.provisioning import tenant_sandbox_drop

    if audit.sandbox_schema:
        tenant_sandbox_drop(schema_name=audit.sandbox_schema)
    for entry in (audit.files or {}).values():
        if entry.get("path") and default_storage.exists(entry["path"]):
            default_storage.delete(entry["path"])
    audit.findings.all().delete()
    audit.share_links.all().delete()
    Audit.objects.filter(pk=audit.pk).update(
        status=AuditStatus.EXPIRED,
        report={},
        errors=[],
        files={},
        sandbox_schema="",
        stage="Deleted after its retention period",
        purged_at=timezone.now(),
    )


def audits_purge_expired(*, now=None) -> int:
    now = now or timezone.now()
    due = list(Audit.objects.filter(expires_at__lte=now, purged_at__isnull=True))
    for audit in due:
        audit_purge(audit=audit)
    return len(due)


# --------------------------------------------------------------------------- share links


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def audit_share_link_create(*, audit: Audit, user=None, days: int | None = None) -> tuple[AuditShareLink, str]:
    """A new read-only link; the token is returned once and only its hash is kept. A link never
    outlives the audit's retention."""
    if audit.status != AuditStatus.READY:
        raise ValueError("Only a finished audit can be shared.")
    token = secrets.token_urlsafe(24)
    expires = min(timezone.now() + timedelta(days=days or settings.AUDIT_SHARE_LINK_DAYS), audit.expires_at)
    link = AuditShareLink.objects.create(
        audit=audit,
        token_hash=_digest(token),
        prefix=token[:8],
        created_by=user if getattr(user, "pk", None) else None,
        expires_at=expires,
    )
    return link, token


def audit_share_link_revoke(*, link: AuditShareLink) -> None:
    AuditShareLink.objects.filter(pk=link.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())


def audit_for_share_token(token: str) -> Audit | None:
    """The audit a live link opens, or None (unknown, revoked, expired, or the audit is gone)."""
    if not token or len(token) > 100:
        return None
    link = (
        AuditShareLink.objects.select_related("audit")
        .filter(token_hash=_digest(token), revoked_at__isnull=True, expires_at__gt=timezone.now())
        .first()
    )
    if link is None or link.audit.status != AuditStatus.READY:
        return None
    return link.audit
