"""Collections: payments and where they went, card payments, bank statements, dunning (DESIGN.md §3–§4).

The ledger, and what "never more than" means here:

- A **Payment** is money received from a customer, in one currency. ``allocated`` and ``refunded``
  are kept by the services under a row lock on the payment; ``unapplied`` is computed by PostgreSQL
  and its CHECK (``>= 0``) is what stops a payment from being spent twice.
- An **Allocation** applies part of a payment to one invoice. Allocations are never edited: a
  refund, chargeback or credit note adds a *reversal* row (negative amount, pointing at the
  allocation it undoes) and raises ``reversed_amount`` on the original, whose CHECK keeps it within
  the allocation. Each row has the business date it took effect (``applied_on``), so aging and DSO
  can be computed as of any past date.
- The invoice side lives on ``billing.Invoice`` (``amount_paid``, ``written_off``, ``paid_on``,
  generated ``amount_open`` with its own ``>= 0`` CHECK): an allocation can never exceed what is
  open on the invoice either.

Idempotency keys: ``Payment.external_id`` (API, Stripe payment intent, bank statement line),
``Refund.external_id`` (Stripe refund / dispute), ``StripeEvent.event_id``,
``BankStatementLine.line_key``, ``DunningNotice (invoice, step)``.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from billing.models import money_field
from revexos.money import CURRENCIES

ZERO = Decimal("0")


class PaymentMethod(models.TextChoices):
    CARD = "card", "Card"
    BANK_TRANSFER = "bank_transfer", "Bank transfer"
    ACH = "ach", "ACH"
    SEPA_DEBIT = "sepa_debit", "SEPA direct debit"
    CHECK = "check", "Check"
    OTHER = "other", "Other"


class PaymentSource(models.TextChoices):
    API = "api", "API"
    UI = "ui", "Recorded by hand"
    STRIPE = "stripe", "Stripe"
    BANK_STATEMENT = "bank_statement", "Bank statement"
    DEMO = "demo", "Demo data"


class Payment(models.Model):
    customer = models.ForeignKey("contracts.Customer", on_delete=models.PROTECT, related_name="payments")
    currency = models.CharField(max_length=3, choices=CURRENCIES)
    amount = money_field()
    received_on = models.DateField()
    method = models.CharField(max_length=16, choices=PaymentMethod.choices)
    reference = models.CharField(max_length=300, blank=True)
    payer_name = models.CharField(max_length=200, blank=True)
    external_id = models.CharField(max_length=200, null=True, blank=True, unique=True)
    source = models.CharField(max_length=16, choices=PaymentSource.choices, default=PaymentSource.API)
    charge_id = models.CharField(max_length=100, blank=True, help_text="The card processor's charge, for refunds.")
    allocated = money_field(default=ZERO)
    refunded = money_field(default=ZERO)
    unapplied = models.GeneratedField(
        expression=F("amount") - F("allocated") - F("refunded"),
        output_field=models.DecimalField(max_digits=20, decimal_places=6),
        db_persist=True,
    )
    notes = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-received_on", "-id"]
        indexes = [
            models.Index(fields=["customer", "currency"], condition=Q(unapplied__gt=0), name="payment_unapplied"),
            models.Index(fields=["received_on"], name="payment_received_on"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="payment_amount_positive"),
            models.CheckConstraint(
                condition=Q(allocated__gte=0) & Q(refunded__gte=0), name="payment_parts_non_negative"
            ),
            models.CheckConstraint(condition=Q(unapplied__gte=0), name="payment_not_overspent"),
        ]

    def __str__(self) -> str:
        return f"{self.amount} {self.currency} from {self.customer_id} on {self.received_on}"


class AllocationKind(models.TextChoices):
    ALLOCATION = "allocation", "Allocation"
    REVERSAL = "reversal", "Reversal"


class Allocation(models.Model):
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="allocations")
    invoice = models.ForeignKey("billing.Invoice", on_delete=models.PROTECT, related_name="allocations")
    kind = models.CharField(max_length=10, choices=AllocationKind.choices, default=AllocationKind.ALLOCATION)
    amount = money_field(help_text="Positive for an allocation, negative for a reversal.")
    reversed_amount = money_field(default=ZERO, help_text="How much of this allocation later reversals took back.")
    reverses = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="reversals")
    refund = models.ForeignKey("Refund", null=True, blank=True, on_delete=models.PROTECT, related_name="reversals")
    applied_on = models.DateField()
    reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["applied_on", "id"]
        indexes = [
            models.Index(fields=["invoice", "applied_on"], name="allocation_invoice_date"),
            models.Index(fields=["payment", "-applied_on", "-id"], name="allocation_payment_newest"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=(Q(kind="allocation") & Q(amount__gt=0) & Q(reverses__isnull=True))
                | (Q(kind="reversal") & Q(amount__lt=0) & Q(reverses__isnull=False)),
                name="allocation_sign_matches_kind",
            ),
            models.CheckConstraint(
                condition=Q(reversed_amount__gte=0) & Q(reversed_amount__lte=F("amount")) | Q(kind="reversal"),
                name="allocation_reversed_within_amount",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.amount} of payment {self.payment_id} → invoice {self.invoice_id}"

    @property
    def remaining(self) -> Decimal:
        return self.amount - self.reversed_amount


class RefundKind(models.TextChoices):
    REFUND = "refund", "Refund"
    CHARGEBACK = "chargeback", "Chargeback"


class Refund(models.Model):
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    kind = models.CharField(max_length=10, choices=RefundKind.choices, default=RefundKind.REFUND)
    amount = money_field()
    refunded_on = models.DateField()
    reason = models.CharField(max_length=500)
    external_id = models.CharField(max_length=200, null=True, blank=True, unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-refunded_on", "-id"]
        constraints = [models.CheckConstraint(condition=Q(amount__gt=0), name="refund_amount_positive")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.amount} of payment {self.payment_id}"


class WriteOff(models.Model):
    invoice = models.ForeignKey("billing.Invoice", on_delete=models.PROTECT, related_name="write_offs")
    amount = money_field()
    written_on = models.DateField()
    reason = models.CharField(max_length=500)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-written_on", "-id"]
        # A negative row undoes part of a write-off (a later credit note took its place).
        constraints = [models.CheckConstraint(condition=~Q(amount=0), name="write_off_amount_not_zero")]

    def __str__(self) -> str:
        return f"Write-off {self.amount} on invoice {self.invoice_id}"


# --------------------------------------------------------------------------- settings and Stripe


class CollectionsSettings(models.Model):
    """One row per tenant: the collection policy switches."""

    dunning_enabled = models.BooleanField(default=True, help_text="Send payment reminders by the dunning steps.")
    monthly_statements = models.BooleanField(
        default=False, help_text="E-mail each customer with an open balance a statement of account on the 1st."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "collections settings"

    def __str__(self) -> str:
        return "Collections settings"

    @classmethod
    def current(cls) -> CollectionsSettings:
        row = cls.objects.order_by("pk").first()
        return row or cls.objects.create()


class StripeAccount(models.Model):
    """The tenant's own Stripe account (one per tenant). Keys stay on the server; pages and the
    API only ever show their last four characters."""

    secret_key = models.CharField(max_length=255)
    publishable_key = models.CharField(max_length=255)
    webhook_secret = models.CharField(max_length=255)
    account_name = models.CharField(max_length=200, blank=True)
    connected_at = models.DateTimeField(auto_now_add=True)
    connected_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Stripe account …{self.secret_key[-4:]}"


class StripeEvent(models.Model):
    """Each Stripe webhook event, stored once by its id before it is handled."""

    event_id = models.CharField(max_length=100, unique=True)
    type = models.CharField(max_length=100)
    payload = models.JSONField()
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"


class PaymentAttemptStatus(models.TextChoices):
    CREATED = "created", "Started"
    PROCESSING = "processing", "Processing"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class PaymentAttempt(models.Model):
    """A card payment started on an invoice's pay page (one Stripe PaymentIntent)."""

    invoice = models.ForeignKey("billing.Invoice", on_delete=models.PROTECT, related_name="payment_attempts")
    payment_intent_id = models.CharField(max_length=100, unique=True)
    amount = money_field()
    currency = models.CharField(max_length=3, choices=CURRENCIES)
    status = models.CharField(max_length=12, choices=PaymentAttemptStatus.choices, default=PaymentAttemptStatus.CREATED)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.payment_intent_id} ({self.status})"


class Dispute(models.Model):
    """A card payment the cardholder disputes: the invoice is flagged, dunning stops, finance reviews."""

    external_id = models.CharField(max_length=100, unique=True)
    payment = models.ForeignKey(Payment, null=True, blank=True, on_delete=models.PROTECT, related_name="disputes")
    invoice = models.ForeignKey("billing.Invoice", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    amount = money_field()
    currency = models.CharField(max_length=3, choices=CURRENCIES)
    reason = models.CharField(max_length=100, blank=True)
    status = models.CharField(max_length=40, default="needs_response")
    opened_on = models.DateField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-opened_on", "-id"]

    def __str__(self) -> str:
        return f"Dispute {self.external_id}"


# --------------------------------------------------------------------------- dunning


class DunningStep(models.Model):
    """One reminder of the tenant's policy, ``offset_days`` from the due date (negative = before)."""

    name = models.CharField(max_length=100)
    offset_days = models.SmallIntegerField()
    subject = models.CharField(max_length=200)
    body = models.TextField(help_text="Opening paragraph of the e-mail; the invoice summary and pay link follow.")
    is_final = models.BooleanField(default=False, help_text="Also raises a review task for the account manager.")
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["offset_days"]
        constraints = [
            models.CheckConstraint(
                condition=Q(offset_days__gte=-60) & Q(offset_days__lte=365), name="dunning_offset_bounded"
            ),
            # One step per day; checked at commit so the policy form can move steps past each other.
            models.UniqueConstraint(
                fields=["offset_days"], name="dunning_step_one_per_day", deferrable=models.Deferrable.DEFERRED
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.offset_days:+d} days)"


class DunningNotice(models.Model):
    """A reminder sent (queued) for one invoice and one step: at most once, by the unique key."""

    invoice = models.ForeignKey("billing.Invoice", on_delete=models.PROTECT, related_name="dunning_notices")
    step = models.ForeignKey(DunningStep, on_delete=models.PROTECT, related_name="notices")
    offset_days = models.SmallIntegerField(help_text="The step's offset when it was sent.")
    sent_on = models.DateField(help_text="The as-of date of the run that sent it.")
    delivery = models.ForeignKey(
        "billing.InvoiceDelivery", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-sent_on", "-id"]
        constraints = [models.UniqueConstraint(fields=["invoice", "step"], name="dunning_notice_once")]

    def __str__(self) -> str:
        return f"Reminder {self.offset_days:+d} for invoice {self.invoice_id}"


class DunningPause(models.Model):
    """Reminders stop for a customer or a contract until the pause is lifted."""

    customer = models.ForeignKey(
        "contracts.Customer", null=True, blank=True, on_delete=models.CASCADE, related_name="dunning_pauses"
    )
    contract = models.ForeignKey(
        "contracts.Contract", null=True, blank=True, on_delete=models.CASCADE, related_name="dunning_pauses"
    )
    reason = models.CharField(max_length=500)
    paused_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    lifted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(customer__isnull=False, contract__isnull=True)
                | Q(customer__isnull=True, contract__isnull=False),
                name="dunning_pause_one_scope",
            )
        ]

    def __str__(self) -> str:
        return f"Pause: {self.reason}"


# --------------------------------------------------------------------------- statements of account


class StatementSend(models.Model):
    """A statement of account e-mailed to a customer; ``key`` makes the monthly one once per month."""

    customer = models.ForeignKey("contracts.Customer", on_delete=models.PROTECT, related_name="statement_sends")
    key = models.CharField(max_length=100, unique=True)
    as_of = models.DateField()
    recipients = models.JSONField(default=list)
    status = models.CharField(max_length=10, default="queued")
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Statement {self.key} ({self.status})"


# --------------------------------------------------------------------------- bank statements


class BankStatement(models.Model):
    filename = models.CharField(max_length=300)
    format = models.CharField(max_length=10)
    digest = models.CharField(max_length=64, help_text="SHA-256 of the file.")
    lines_total = models.PositiveIntegerField(default=0)
    lines_new = models.PositiveIntegerField(default=0)
    imported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    imported_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-imported_at", "-id"]

    def __str__(self) -> str:
        return f"{self.filename} ({self.format})"


class BankLineStatus(models.TextChoices):
    MATCHED = "matched", "Matched"
    QUEUED = "queued", "Waiting for a match"
    IGNORED = "ignored", "Ignored"


class BankStatementLine(models.Model):
    statement = models.ForeignKey(BankStatement, on_delete=models.CASCADE, related_name="lines")
    line_key = models.CharField(max_length=100, unique=True, help_text="Idempotency key of the statement line.")
    booked_on = models.DateField()
    amount = money_field()
    currency = models.CharField(max_length=3, choices=CURRENCIES)
    reference = models.CharField(max_length=500, blank=True)
    payer = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=10, choices=BankLineStatus.choices, default=BankLineStatus.QUEUED)
    match_reason = models.CharField(max_length=200, blank=True)
    payment = models.OneToOneField(Payment, null=True, blank=True, on_delete=models.SET_NULL, related_name="bank_line")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["booked_on", "id"]
        indexes = [models.Index(fields=["status"], name="bank_line_status")]
        constraints = [models.CheckConstraint(condition=Q(amount__gt=0), name="bank_line_credit_positive")]

    def __str__(self) -> str:
        return f"{self.booked_on} {self.amount} {self.currency} {self.reference}"
