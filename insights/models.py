"""Models of this module; see DESIGN.md §3.

A LeakageFinding is one place where revenue that the contract says is owed was not (correctly)
billed: one of the rules L1–L10 of DESIGN.md §4 (the rules themselves live in
``insights/leakage.py``). ``fingerprint`` names the cause — rule, contract and the period or object
it is about — and is unique, so a rescan finds the same row again instead of adding a duplicate:
it refreshes the amount and the evidence, or resolves the row when the cause is gone.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q

from revexos.money import CURRENCIES


class LeakageRule(models.TextChoices):
    L1 = "L1", "Milestone delivered, not invoiced within 24 h"
    L2 = "L2", "Billable time not invoiced after its period closed"
    L3 = "L3", "Usage not invoiced after its period closed"
    L4 = "L4", "Discount outside its window or with no expiry"
    L5 = "L5", "Contract in its notice period with no renewal decision"
    L6 = "L6", "Invoiced price differs from the contract rate"
    L7 = "L7", "Time logged after a fixed fee was fully invoiced"
    L8 = "L8", "Invoice terms differ from the contract"
    L9 = "L9", "Minimum commitment shortfall not billed"
    L10 = "L10", "Recurring period with no invoice"


class FindingStatus(models.TextChoices):
    OPEN = "open", "Open"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    RESOLVED = "resolved", "Resolved"
    DISMISSED = "dismissed", "Dismissed"


# Findings a scan keeps up to date and resolves when their cause is gone. Dismissed findings are a
# person's decision ("not a leak"): a scan never touches their status.
LIVE_STATUSES = (FindingStatus.OPEN, FindingStatus.ACKNOWLEDGED)


class LeakageFinding(models.Model):
    rule = models.CharField(max_length=3, choices=LeakageRule.choices)
    fingerprint = models.CharField(
        max_length=200, unique=True, help_text="rule:contract:period-or-object — stable across scans."
    )
    contract = models.ForeignKey(
        "contracts.Contract", null=True, blank=True, on_delete=models.CASCADE, related_name="leakage_findings"
    )
    customer = models.ForeignKey(
        "contracts.Customer", null=True, blank=True, on_delete=models.CASCADE, related_name="leakage_findings"
    )
    invoice = models.ForeignKey(
        "billing.Invoice", null=True, blank=True, on_delete=models.SET_NULL, related_name="leakage_findings"
    )
    title = models.CharField(max_length=300)
    period_start = models.DateField(null=True, blank=True)
    period_end = models.DateField(null=True, blank=True)
    amount = models.DecimalField(
        max_digits=20, decimal_places=3, help_text="Estimated revenue at stake, in ``currency``."
    )
    currency = models.CharField(max_length=3, choices=CURRENCIES)
    evidence = models.JSONField(
        default=dict, blank=True, help_text="The facts, lines or terms that prove it: ids and short rows."
    )
    status = models.CharField(max_length=12, choices=FindingStatus.choices, default=FindingStatus.OPEN)
    status_note = models.TextField(blank=True, help_text="Why it was acknowledged, resolved or dismissed.")
    status_changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status_changed_at = models.DateTimeField(null=True, blank=True)
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    first_seen_on = models.DateField(help_text="The scan date (tenant-local) that first found it.")
    last_seen_on = models.DateField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    review_task = models.ForeignKey(
        "billing.BillingReviewTask",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="leakage_findings",
    )

    class Meta:
        ordering = ["-amount", "rule", "id"]
        indexes = [
            models.Index(fields=["status", "rule"], name="leakage_status_rule"),
            models.Index(fields=["contract", "status"], name="leakage_contract_status"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gte=0), name="leakage_amount_non_negative"),
            models.CheckConstraint(
                condition=~Q(status="dismissed") | ~Q(status_note=""),
                name="leakage_dismissed_has_reason",
            ),
            models.CheckConstraint(
                condition=~Q(status="resolved") | Q(resolved_at__isnull=False),
                name="leakage_resolved_has_date",
            ),
            models.CheckConstraint(
                condition=Q(period_start__isnull=True)
                | Q(period_end__isnull=True)
                | Q(period_end__gte=models.F("period_start")),
                name="leakage_period_ordered",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.rule} {self.title}"

    @property
    def is_live(self) -> bool:
        return self.status in LIVE_STATUSES

    @property
    def rows(self) -> list[dict]:
        return list((self.evidence or {}).get("rows", []))

    @property
    def amount_basis(self) -> str:
        return (self.evidence or {}).get("basis", "")


ZERO = Decimal(0)
