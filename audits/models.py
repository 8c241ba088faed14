"""The Q2C audit (DESIGN.md §5.1 ``/api/v1/audits``): a prospect's exports in, leakage findings out.

An Audit lives in the schema of the tenant that runs it (so a tenant's users see only their own
audits, and a share link works only on that tenant's host). The prospect's data — its customers,
contracts, time, usage and old invoices — is imported into a sandbox: a schema-only tenant created
for the audit (``Tenant.sandbox_of``), where the real billing engine runs over it. The sandbox and
the uploaded files are deleted when ``expires_at`` has passed (the ``audit_retention`` cycle step);
the Audit row stays as a record that the audit happened, without its findings.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from revexos.money import CURRENCIES


class AuditStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    PROCESSING = "processing", "Processing"
    READY = "ready", "Ready"
    FAILED = "failed", "Needs attention"
    EXPIRED = "expired", "Deleted after retention"


class Audit(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200, help_text="Whose revenue cycle is audited, e.g. the prospect's name.")
    status = models.CharField(max_length=12, choices=AuditStatus.choices, default=AuditStatus.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0, help_text="0–100 while processing.")
    stage = models.CharField(max_length=200, blank=True, help_text="What the worker is doing now.")
    as_of = models.DateField(null=True, blank=True, help_text="Compare up to this day; empty: the last invoice date.")
    history_from = models.DateField(
        null=True, blank=True, help_text="Periods before this day are outside the export; empty: the first invoice."
    )
    date_format = models.CharField(max_length=4, blank=True, help_text="dmy or mdy for the invoice export's dates.")
    default_currency = models.CharField(max_length=3, blank=True, choices=CURRENCIES)
    files = models.JSONField(default=dict, blank=True, help_text="kind → {name, path, size} of each upload.")
    errors = models.JSONField(default=list, blank=True, help_text="[{file, row, column, message}] when it failed.")
    report = models.JSONField(default=dict, blank=True, help_text="The report's figures (see audits.selectors).")
    sandbox_schema = models.CharField(max_length=63, blank=True)
    runs = models.PositiveSmallIntegerField(default=0, help_text="How many times it was processed.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_via = models.CharField(max_length=8, default="ui", help_text="ui or api")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(help_text="The sandbox, the files and the findings are deleted then.")
    purged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["expires_at"], condition=Q(purged_at__isnull=True), name="audit_due_purge")]
        constraints = [
            models.CheckConstraint(condition=Q(progress__lte=100), name="audit_progress_percent"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_done(self) -> bool:
        return self.status in (AuditStatus.READY, AuditStatus.FAILED, AuditStatus.EXPIRED)


class AuditFinding(models.Model):
    """One leak (or billed-twice, or terms) finding of an audit, with the rows that prove it."""

    audit = models.ForeignKey(Audit, on_delete=models.CASCADE, related_name="findings")
    position = models.PositiveIntegerField()
    rule = models.CharField(max_length=3)
    contract_number = models.CharField(max_length=50)
    customer = models.CharField(max_length=200)
    title = models.CharField(max_length=400)
    period_start = models.DateField(null=True, blank=True)
    period_end = models.DateField(null=True, blank=True)
    amount = models.DecimalField(max_digits=20, decimal_places=3)
    currency = models.CharField(max_length=3, choices=CURRENCIES)
    key = models.CharField(max_length=200, blank=True)
    evidence = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["audit", "position"]
        constraints = [
            models.UniqueConstraint(fields=["audit", "position"], name="audit_finding_position_unique"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="audit_finding_amount_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.rule} {self.title}"


class AuditShareLink(models.Model):
    """A read-only link to an audit's report that works without signing in until it expires.

    Only a SHA-256 of the token is stored: a database leak does not leak working links.
    """

    audit = models.ForeignKey(Audit, on_delete=models.CASCADE, related_name="share_links")
    token_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=8, help_text="The token's first characters, to tell links apart.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.prefix}… for {self.audit}"
