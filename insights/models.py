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


# --------------------------------------------------------------------------- projections
#
# The dashboards' figures stored per contract (insights/services/projections.py computes them with
# the pure forecast and valuation and keeps them current). Rows carry the customer: a customer-wide
# discount shares its cycles between the customer's contracts, so a customer's contracts are always
# projected together. No foreign-key constraints: the rows are derived, written by COPY in bulk and
# replaced whole per customer (a deleted contract's rows go with its customer's next refresh).


def _amount(**kwargs) -> models.DecimalField:
    return models.DecimalField(max_digits=24, decimal_places=8, **kwargs)


class ContractProjection(models.Model):
    """One per active contract: the day its forecast and valuation rows were computed as of."""

    contract = models.OneToOneField(
        "contracts.Contract", on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    customer = models.ForeignKey(
        "contracts.Customer", on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    as_of = models.DateField(db_index=True)
    refreshed_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"contract {self.contract_id} as of {self.as_of}"


class ForecastProjection(models.Model):
    """An invoice line the forecast expects (insights.forecast.ForecastItem), within MAX_MONTHS after as_of."""

    contract = models.ForeignKey(
        "contracts.Contract", on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    customer = models.ForeignKey(
        "contracts.Customer", on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    as_of = models.DateField()
    kind = models.CharField(max_length=24)
    line_ref = models.CharField(max_length=64)
    description = models.CharField(max_length=500, blank=True)
    billing_date = models.DateField()
    month = models.DateField(help_text="The first day of the billing date's month.")
    currency = models.CharField(max_length=3, choices=CURRENCIES)
    gross = _amount()
    discount = _amount()
    net = _amount()
    uplift = _amount()
    period_start = models.DateField(null=True, blank=True)
    period_end = models.DateField(null=True, blank=True)
    basis = models.CharField(max_length=100, blank=True)
    renewal = models.BooleanField(default=False)
    position = models.PositiveIntegerField(help_text="The forecast's own order of its items.")
    # The forecast horizons (in months) this item belongs to: an auto-renewing contract is extended
    # by the terms that start within the horizon, so a period that crosses its end is priced whole
    # in a long forecast and clipped at the end in a short one.
    horizon_from = models.PositiveSmallIntegerField(default=1)
    horizon_to = models.PositiveSmallIntegerField(default=24)

    class Meta:
        indexes = [models.Index(fields=["month", "currency", "kind"], name="forecast_proj_month")]

    def __str__(self) -> str:
        return f"{self.kind} {self.line_ref} on {self.billing_date}: {self.net} {self.currency}"


class ForecastTotal(models.Model):
    """The forecast rows added up by month, currency, kind and horizon range, kept by the refresh
    (it subtracts a customer's old rows and adds its new ones): the whole portfolio's monthly totals
    are a few hundred rows to read, not every expected line."""

    as_of = models.DateField()
    month = models.DateField()
    currency = models.CharField(max_length=3, choices=CURRENCIES)
    kind = models.CharField(max_length=24)
    horizon_from = models.PositiveSmallIntegerField()
    horizon_to = models.PositiveSmallIntegerField()
    gross = _amount()
    discount = _amount()
    net = _amount()
    uplift = _amount()
    uplifted = models.IntegerField(help_text="How many of the rows carry an uplift.")
    items = models.IntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["as_of", "month", "currency", "kind", "horizon_from", "horizon_to"],
                name="forecast_total_unique",
            )
        ]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m} {self.kind}: {self.net} {self.currency}"


class ValuationTotal(models.Model):
    """The valuation rows added up by currency, kept by the refresh as ForecastTotal is (it takes a
    customer's old rows away and adds its new ones): the portfolio's value totals are a row per
    currency to read, not every contract's."""

    as_of = models.DateField()
    currency = models.CharField(max_length=3, choices=CURRENCIES)
    committed = _amount()
    value = _amount()
    recognized = _amount()
    billed = _amount()
    unearned = _amount()
    unbilled_receivable = _amount()
    deferred = _amount()
    contracts = models.IntegerField(help_text="How many valuation rows (contracts in this currency) are added up.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["as_of", "currency"], name="valuation_total_unique")]

    def __str__(self) -> str:
        return f"{self.as_of} {self.currency}: {self.value}"


class ForecastContractTotal(models.Model):
    """A contract's forecast summed over the usual horizons (``HORIZONS`` months, all months and
    kinds), kept with its rows: the forecast page ranks contracts and customers from these."""

    HORIZONS = (3, 6, 12, 24)

    contract = models.ForeignKey(
        "contracts.Contract", on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    customer = models.ForeignKey(
        "contracts.Customer", on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    as_of = models.DateField()
    horizon = models.PositiveSmallIntegerField()
    currency = models.CharField(max_length=3, choices=CURRENCIES)
    gross = _amount()
    discount = _amount()
    net = _amount()
    items = models.IntegerField()

    class Meta:
        indexes = [
            models.Index(fields=["as_of", "horizon"], name="forecast_contract_horizon"),
            # The forecast page's contracts, largest first: a page is the index's first rows.
            models.Index(fields=["as_of", "horizon", "-net", "contract_id", "currency"], name="forecast_contract_rank"),
        ]

    def __str__(self) -> str:
        return f"contract {self.contract_id}, {self.horizon} months: {self.net} {self.currency}"


class ValuationProjection(models.Model):
    """A contract's value in one currency (insights.valuation.ContractValuation) as of ``as_of``."""

    contract = models.ForeignKey(
        "contracts.Contract", on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    customer = models.ForeignKey(
        "contracts.Customer", on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    as_of = models.DateField()
    currency = models.CharField(max_length=3, choices=CURRENCIES)
    committed = _amount()
    recognized = _amount()
    variable = _amount()
    billed = _amount()
    discounts = _amount()
    value = _amount()
    unearned = _amount()
    deferred = _amount()
    unbilled_receivable = _amount()
    position = models.PositiveIntegerField(help_text="The valuation's own order of its rows.")

    class Meta:
        # The contract value page's default order (most unearned first): a page is the index's first rows.
        indexes = [
            models.Index(fields=["as_of", "-unearned", "contract_id", "currency"], name="valuation_unearned_rank")
        ]

    def __str__(self) -> str:
        return f"contract {self.contract_id}: {self.value} {self.currency}"


class ProjectionDirty(models.Model):
    """A customer whose projections may be out of date: written by database triggers on every table
    the projections read (contracts, versions, price lines, rate cards, milestones, discounts and their
    applications, overrides, invoices and lines, time entries, renewal alerts, imported history), so a
    bulk insert, a queryset update or raw SQL marks it as surely as a model save."""

    customer_id = models.BigIntegerField(db_index=True)

    def __str__(self) -> str:
        return f"customer {self.customer_id}"
