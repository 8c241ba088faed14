"""Renewal alerts and the decisions taken on them (DESIGN.md §3, §4 renewal triggers).

One alert per contract *term*: the pair (contract, end_date) is unique, so the renewal-window
trigger can run any number of times, late or concurrently, and still raise each term's alert once.
When a contract renews, its end date moves forward and the next term gets its own alert.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from revexos.money import CURRENCIES


class RenewalStatus(models.TextChoices):
    OPEN = "open", "Open"
    RENEWING = "renewing", "Renewing"
    RENEWED = "renewed", "Renewed"
    CHURNING = "churning", "Churning"
    CHURNED = "churned", "Churned"
    AUTO_RENEWED = "auto_renewed", "Auto-renewed"
    SNOOZED = "snoozed", "Snoozed"


# Alerts that can still take a decision; the others are settled.
ACTIONABLE_STATUSES = (RenewalStatus.OPEN, RenewalStatus.RENEWING, RenewalStatus.CHURNING, RenewalStatus.SNOOZED)
# The queue's "needs action": actionable and not snoozed (a snooze hides the alert until its date).
QUEUE_STATUSES = (RenewalStatus.OPEN, RenewalStatus.RENEWING, RenewalStatus.CHURNING)
# No decision yet: these escalate when the notice deadline comes near.
UNDECIDED_STATUSES = (RenewalStatus.OPEN, RenewalStatus.SNOOZED)
FINAL_STATUSES = (RenewalStatus.RENEWED, RenewalStatus.CHURNED, RenewalStatus.AUTO_RENEWED)


class DecisionKind(models.TextChoices):
    RENEWING = "renewing", "Renewing"
    RENEWED = "renewed", "Renewed"
    CHURNING = "churning", "Churning"
    CHURNED = "churned", "Churned"
    SNOOZED = "snoozed", "Snoozed"
    # Recorded by the system, never chosen by a person:
    AUTO_RENEWED = "auto_renewed", "Auto-renewed"
    LAPSED = "lapsed", "Lapsed (ended without a decision)"
    ESCALATED = "escalated", "Escalated"
    REOPENED = "reopened", "Snooze ended"


PERSON_DECISIONS = (
    DecisionKind.RENEWING,
    DecisionKind.RENEWED,
    DecisionKind.CHURNING,
    DecisionKind.CHURNED,
    DecisionKind.SNOOZED,
)


class RenewalAlert(models.Model):
    contract = models.ForeignKey("contracts.Contract", on_delete=models.CASCADE, related_name="renewal_alerts")
    # The term this alert is about: the contract's end date when the alert was raised.
    end_date = models.DateField()
    raised_at = models.DateTimeField()
    raised_on = models.DateField(help_text="The cycle date (tenant's local day) that raised the alert.")
    window_days = models.PositiveSmallIntegerField()
    window_start = models.DateField(help_text="end date − window: the day the alert was due.")
    notice_deadline = models.DateField(help_text="end date − notice period: the last day to give notice.")
    currency = models.CharField(max_length=3, choices=CURRENCIES)
    annual_recurring_value = models.DecimalField(max_digits=20, decimal_places=3)
    remaining_value = models.DecimalField(
        max_digits=20,
        decimal_places=3,
        help_text="Committed value from the raising day to the end date.",
    )
    # What the owner stands to keep or lose (renewals/valuation.py): the annual recurring value, or
    # for a contract with nothing recurring its value over the term, with the parts named.
    value_at_stake = models.DecimalField(max_digits=20, decimal_places=3, default=0, db_default=0)
    value_basis = models.CharField(
        max_length=6,
        choices=[("annual", "A year of recurring value"), ("term", "Value over the term")],
        default="annual",
        db_default="annual",
    )
    value_parts = models.JSONField(default=list, blank=True, db_default=[])
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="renewal_alerts",
    )
    status = models.CharField(max_length=12, choices=RenewalStatus.choices, default=RenewalStatus.OPEN)
    snoozed_until = models.DateField(null=True, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decision_note = models.TextField(blank=True)
    # Renewing: the terms being negotiated, {"term_months": 12, "uplift_pct": "5"}; empty = the contract's own.
    proposed_terms = models.JSONField(default=dict, blank=True)
    # The version that carried the contract into its next term (renewed or auto-renewed).
    renewal_version = models.ForeignKey(
        "contracts.ContractVersion",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ["notice_deadline", "-value_at_stake", "id"]
        constraints = [
            models.UniqueConstraint(fields=["contract", "end_date"], name="renewal_alert_one_per_term"),
            models.CheckConstraint(
                condition=~Q(status="snoozed") | Q(snoozed_until__isnull=False),
                name="renewal_alert_snooze_has_date",
            ),
            models.CheckConstraint(
                condition=Q(annual_recurring_value__gte=0) & Q(remaining_value__gte=0) & Q(value_at_stake__gte=0),
                name="renewal_alert_value_non_negative",
            ),
            models.CheckConstraint(
                condition=Q(window_start__lte=models.F("end_date")), name="renewal_alert_window_before_end"
            ),
        ]
        indexes = [
            models.Index(fields=["status", "notice_deadline"]),
            models.Index(fields=["owner", "status"]),
            models.Index(fields=["end_date"]),
        ]

    def __str__(self) -> str:
        return f"Renewal of {self.contract_id} ending {self.end_date.isoformat()} ({self.get_status_display()})"

    @property
    def is_actionable(self) -> bool:
        return self.status in ACTIONABLE_STATUSES


class RenewalDecision(models.Model):
    """One entry of an alert's decision log: who decided what, when, and why."""

    alert = models.ForeignKey(RenewalAlert, on_delete=models.CASCADE, related_name="decisions")
    decision = models.CharField(max_length=12, choices=DecisionKind.choices)
    note = models.TextField(blank=True)
    proposed_terms = models.JSONField(default=dict, blank=True)
    snooze_until = models.DateField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField()
    decided_on = models.DateField(
        help_text="The tenant-local day of the decision (or the cycle date for system entries)."
    )

    class Meta:
        ordering = ["alert", "decided_at", "id"]
        indexes = [models.Index(fields=["alert", "decided_at"])]

    def __str__(self) -> str:
        return f"{self.get_decision_display()} on {self.decided_on.isoformat()}"


class RenewalDigestSent(models.Model):
    """The daily digest went to this user on this day: running the digest twice sends it once."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    sent_on = models.DateField()
    alert_count = models.PositiveIntegerField(default=0)
    sent_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "sent_on"], name="renewal_digest_once_a_day")]

    def __str__(self) -> str:
        return f"digest to user {self.user_id} on {self.sent_on}"
