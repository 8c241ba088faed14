"""Pricing exceptions and their lifecycle (DESIGN.md §3): discounts, credits, price overrides.

Every exception is tracked from creation to expiry: ``history`` (simple-history) keeps every
version of the row, and ``ExceptionEvent`` says in words who or what changed its state and why
(created and approved, activated, expired, revoked, extended, cycles used up, credit used up).

What an exception did is stored beside the invoice it touched: ``DiscountApplication`` (one row per
discounted invoice line) and ``CreditApplication`` (one row per credit and invoice). Those rows are
the revenue given up to date and, for a discount with ``max_cycles``, the cycles it has used.
The rules themselves live in the pure module ``discounts/applicator.py``.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from revexos.money import CURRENCIES

ZERO = Decimal("0")


def money_field(**kwargs) -> models.DecimalField:
    kwargs.setdefault("max_digits", 20)
    kwargs.setdefault("decimal_places", 6)
    return models.DecimalField(**kwargs)


class ExceptionStatus(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled"
    ACTIVE = "active", "Active"
    EXPIRED = "expired", "Expired"
    REVOKED = "revoked", "Revoked"


class CreditStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    USED = "used", "Used up"
    EXPIRED = "expired", "Expired"
    REVOKED = "revoked", "Revoked"


class DiscountKind(models.TextChoices):
    PERCENTAGE = "percentage", "Percentage"
    FIXED = "fixed", "Fixed amount per cycle"


class DiscountScope(models.TextChoices):
    CONTRACT = "contract", "Contract"
    CUSTOMER = "customer", "Customer (all contracts)"
    PRICE_LINE = "price_line", "Price line"


class _Approved(models.Model):
    reason = models.CharField(max_length=500, help_text="Why the exception was granted.")
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The finance or admin user who approved it.",
    )
    approved_label = models.CharField(
        max_length=200,
        blank=True,
        help_text="Who approved it when not a user of this workspace (e.g. an API key).",
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_via = models.CharField(max_length=10, default="ui", help_text="ui, api or admin")
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoke_reason = models.CharField(max_length=500, blank=True)

    class Meta:
        abstract = True

    @property
    def approver(self) -> str:
        if self.approved_by_id:
            return self.approved_by.get_full_name() or self.approved_by.email
        return self.approved_label or "—"


class Discount(_Approved):
    """A percentage or a fixed amount off, for a contract, a customer or one price line.

    The window is ``start_date`` to ``end_date`` (inclusive) and/or ``max_cycles`` billing periods;
    one of them is required, or a written ``no_expiry_reason``. A fixed discount is an amount per
    billing cycle in ``currency``; a percentage discount has no currency.
    """

    kind = models.CharField(max_length=10, choices=DiscountKind.choices)
    value = money_field(help_text="Percent (10 = 10 %) or the amount per cycle.")
    currency = models.CharField(max_length=3, choices=CURRENCIES, blank=True)
    scope = models.CharField(max_length=10, choices=DiscountScope.choices)
    customer = models.ForeignKey("contracts.Customer", on_delete=models.PROTECT, related_name="discounts")
    contract = models.ForeignKey(
        "contracts.Contract", null=True, blank=True, on_delete=models.PROTECT, related_name="discounts"
    )
    line_ref = models.CharField(max_length=40, blank=True, help_text="Price line scope: the line's stable ref.")
    start_date = models.DateField()
    end_date = models.DateField(null=True, blank=True)
    max_cycles = models.PositiveSmallIntegerField(null=True, blank=True)
    no_expiry_reason = models.CharField(max_length=500, blank=True)
    status = models.CharField(max_length=10, choices=ExceptionStatus.choices, default=ExceptionStatus.SCHEDULED)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "end_date"], name="discount_status_end")]
        constraints = [
            models.CheckConstraint(condition=Q(value__gt=0), name="discount_value_positive"),
            models.CheckConstraint(
                condition=~Q(kind="percentage") | Q(value__lte=100), name="discount_percent_at_most_100"
            ),
            models.CheckConstraint(condition=~Q(kind="fixed") | ~Q(currency=""), name="discount_fixed_has_currency"),
            models.CheckConstraint(
                condition=Q(end_date__isnull=True) | Q(end_date__gte=models.F("start_date")),
                name="discount_end_not_before_start",
            ),
            models.CheckConstraint(
                condition=Q(end_date__isnull=False) | Q(max_cycles__isnull=False) | ~Q(no_expiry_reason=""),
                name="discount_expires_or_says_why",
            ),
            models.CheckConstraint(
                condition=Q(max_cycles__isnull=True) | Q(max_cycles__gte=1), name="discount_cycles_positive"
            ),
            models.CheckConstraint(
                condition=(Q(scope="customer") & Q(contract__isnull=True) & Q(line_ref=""))
                | (Q(scope="contract") & Q(contract__isnull=False) & Q(line_ref=""))
                | (Q(scope="price_line") & Q(contract__isnull=False) & ~Q(line_ref="")),
                name="discount_scope_consistent",
            ),
        ]

    def __str__(self) -> str:
        return f"Discount D-{self.pk}"

    @property
    def reference(self) -> str:
        return f"D-{self.pk}"


class Credit(_Approved):
    """Money owed to the customer, consumed by the next invoices (or only the named ones).

    ``balance`` is what is left; it only goes down, in the issuing transaction of an invoice.
    ``pinned_invoices`` names the invoices it may be used on: an invoice number
    (``INV-2026-000042``) or a contract and billing month (``C-1001@2026-03``). Empty = any invoice
    of the customer (of ``contract`` when set) in ``currency``.
    """

    customer = models.ForeignKey("contracts.Customer", on_delete=models.PROTECT, related_name="credits")
    contract = models.ForeignKey(
        "contracts.Contract", null=True, blank=True, on_delete=models.PROTECT, related_name="credits"
    )
    amount = money_field()
    currency = models.CharField(max_length=3, choices=CURRENCIES)
    balance = money_field()
    expires_on = models.DateField(null=True, blank=True, help_text="Last day the credit can be used.")
    no_expiry_reason = models.CharField(max_length=500, blank=True)
    pinned_invoices = ArrayField(models.CharField(max_length=60), default=list, blank=True)
    status = models.CharField(max_length=10, choices=CreditStatus.choices, default=CreditStatus.ACTIVE)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["customer", "status"], name="credit_customer_status")]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="credit_amount_positive"),
            models.CheckConstraint(
                condition=Q(balance__gte=0) & Q(balance__lte=models.F("amount")), name="credit_balance_within_amount"
            ),
            models.CheckConstraint(
                condition=Q(expires_on__isnull=False) | ~Q(no_expiry_reason=""),
                name="credit_expires_or_says_why",
            ),
        ]

    def __str__(self) -> str:
        return f"Credit CR-{self.pk}"

    @property
    def reference(self) -> str:
        return f"CR-{self.pk}"


class PriceOverride(_Approved):
    """A custom rate replacing the contract's rate inside ``start_date``–``end_date`` only.

    On a recurring line ``rate`` replaces the period amount, on a usage line the unit price, on a
    time-and-materials line the hourly rate of ``role``.
    """

    customer = models.ForeignKey("contracts.Customer", on_delete=models.PROTECT, related_name="price_overrides")
    contract = models.ForeignKey("contracts.Contract", on_delete=models.PROTECT, related_name="price_overrides")
    line_ref = models.CharField(max_length=40)
    role = models.CharField(max_length=100, blank=True)
    rate = money_field()
    currency = models.CharField(max_length=3, choices=CURRENCIES)
    start_date = models.DateField()
    end_date = models.DateField()
    status = models.CharField(max_length=10, choices=ExceptionStatus.choices, default=ExceptionStatus.SCHEDULED)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["contract", "line_ref"], name="override_contract_line")]
        constraints = [
            models.CheckConstraint(condition=Q(rate__gte=0), name="override_rate_non_negative"),
            models.CheckConstraint(
                condition=Q(end_date__gte=models.F("start_date")), name="override_end_not_before_start"
            ),
        ]

    def __str__(self) -> str:
        return f"Price override PO-{self.pk}"

    @property
    def reference(self) -> str:
        return f"PO-{self.pk}"


class DiscountApplication(models.Model):
    """What one discount took off one invoice line. Written only while the invoice is a draft."""

    discount = models.ForeignKey(Discount, on_delete=models.PROTECT, related_name="applications")
    invoice = models.ForeignKey("billing.Invoice", on_delete=models.CASCADE, related_name="discount_applications")
    invoice_line = models.ForeignKey(
        "billing.InvoiceLine", on_delete=models.CASCADE, related_name="discount_applications"
    )
    amount = money_field()
    cycle_key = models.CharField(max_length=40, help_text="The billing cycle it counts against (period start).")
    coverage = models.DecimalField(
        max_digits=9, decimal_places=6, help_text="Share of the line's period inside the window."
    )
    stage = models.CharField(max_length=8, help_text="line (price-line scope) or invoice (contract/customer scope)")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["invoice", "invoice_line", "id"]
        constraints = [
            models.UniqueConstraint(fields=["discount", "invoice_line"], name="discount_once_per_line"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="discount_application_positive"),
        ]

    def __str__(self) -> str:
        return f"discount {self.discount_id} −{self.amount} on line {self.invoice_line_id}"


class CreditApplication(models.Model):
    """What one credit took off one invoice's amount due, in its issuing transaction."""

    credit = models.ForeignKey(Credit, on_delete=models.PROTECT, related_name="applications")
    invoice = models.ForeignKey("billing.Invoice", on_delete=models.PROTECT, related_name="credit_applications")
    amount = money_field()
    applied_on = models.DateField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["invoice", "id"]
        constraints = [
            models.UniqueConstraint(fields=["credit", "invoice"], name="credit_once_per_invoice"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="credit_application_positive"),
        ]

    def __str__(self) -> str:
        return f"credit {self.credit_id} −{self.amount} on invoice {self.invoice_id}"


class EventAction(models.TextChoices):
    CREATED = "created", "Created and approved"
    ACTIVATED = "activated", "Activated"
    EXPIRED = "expired", "Expired"
    CYCLES_USED = "cycles_used", "Billing cycles used up"
    REVOKED = "revoked", "Revoked"
    EXTENDED = "extended", "Extended"
    ENDED_EARLY = "ended_early", "End brought forward"
    USED_UP = "used_up", "Credit used up"


class ExceptionEvent(models.Model):
    """The audit log of an exception's lifecycle: what changed, when, by whom and why."""

    discount = models.ForeignKey(Discount, null=True, blank=True, on_delete=models.CASCADE, related_name="events")
    credit = models.ForeignKey(Credit, null=True, blank=True, on_delete=models.CASCADE, related_name="events")
    price_override = models.ForeignKey(
        PriceOverride, null=True, blank=True, on_delete=models.CASCADE, related_name="events"
    )
    action = models.CharField(max_length=12, choices=EventAction.choices)
    from_status = models.CharField(max_length=10, blank=True)
    to_status = models.CharField(max_length=10, blank=True)
    effective_on = models.DateField(null=True, blank=True, help_text="The tenant-local day the change took effect.")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=200, blank=True, help_text="The system actor: beat, run, API key …")
    reason = models.CharField(max_length=500, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(discount__isnull=False) & Q(credit__isnull=True) & Q(price_override__isnull=True))
                | (Q(discount__isnull=True) & Q(credit__isnull=False) & Q(price_override__isnull=True))
                | (Q(discount__isnull=True) & Q(credit__isnull=True) & Q(price_override__isnull=False)),
                name="exception_event_one_subject",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.from_status}→{self.to_status} at {self.at:%Y-%m-%d}"

    @property
    def who(self) -> str:
        if self.actor_id:
            return self.actor.get_full_name() or self.actor.email
        return self.actor_label or "RevExOS"
