"""Billing facts, invoices and their invariants (DESIGN.md §3, §4).

Facts (UsageEvent, TimeEntry, DeliveryEvent) are stored once, idempotently by their external id,
and point at the invoice line that billed them (``invoice_line`` null = not billed yet). Every
InvoiceLine carries a ``billing_key`` unique in the tenant: the last guard against billing the same
obligation twice, whatever the scheduler or a redelivered webhook does.

Issued invoices, their lines and credit notes are immutable; migration 0002 enforces that with
PostgreSQL triggers, so no code path (admin, shell, a bug) can rewrite an issued document.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import F, Q, Value
from django.db.models.functions import Greatest, Now
from simple_history.models import HistoricalRecords

from revexos.money import CURRENCIES

ZERO = Decimal("0")


def money_field(**kwargs) -> models.DecimalField:
    """Billed amounts are quantized to the currency (≤ 3 places); unit prices keep up to 6."""
    kwargs.setdefault("max_digits", 20)
    kwargs.setdefault("decimal_places", 6)
    return models.DecimalField(**kwargs)


quantity_field = money_field


# --------------------------------------------------------------------------- facts


class UsageEvent(models.Model):
    """One metered event. ``transaction_id`` is the sender's idempotency key.

    The table is the largest one and billing marks every row it invoices, so it carries no index
    nothing reads: the contract's own index is the leading column of ``usage_contract_metric_ts``,
    and the key's uniqueness is a constraint (``unique=True`` would add a pattern-matching index
    for LIKE lookups nobody makes)."""

    transaction_id = models.CharField(max_length=200)
    contract = models.ForeignKey(
        "contracts.Contract", on_delete=models.PROTECT, related_name="usage_events", db_index=False
    )
    metric = models.CharField(max_length=100)
    quantity = quantity_field()
    timestamp = models.DateTimeField()
    properties = models.JSONField(default=dict, blank=True)
    received_at = models.DateTimeField(db_default=Now())
    invoice_line = models.ForeignKey(
        "billing.InvoiceLine", null=True, blank=True, on_delete=models.SET_NULL, related_name="usage_events"
    )

    class Meta:
        ordering = ["timestamp", "id"]
        indexes = [
            models.Index(fields=["contract", "metric", "timestamp"], name="usage_contract_metric_ts"),
            # Billing looks for what is not billed yet; that set stays small.
            models.Index(fields=["contract", "metric"], condition=Q(invoice_line__isnull=True), name="usage_unbilled"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["transaction_id"], name="usage_transaction_id_unique"),
            models.CheckConstraint(condition=Q(quantity__gte=0), name="usage_quantity_non_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.metric} {self.quantity} @ {self.timestamp:%Y-%m-%d %H:%M}"


class TimeEntry(models.Model):
    """Hours worked on a contract. ``line_ref`` is the price line the hours count against,
    resolved at ingestion from the terms in force on the work date (blank: no line takes them)."""

    external_id = models.CharField(max_length=200, unique=True)
    contract = models.ForeignKey("contracts.Contract", on_delete=models.PROTECT, related_name="time_entries")
    person = models.CharField(max_length=200)
    role = models.CharField(max_length=100)
    work_date = models.DateField()
    hours = quantity_field()
    billable = models.BooleanField(default=True)
    description = models.CharField(max_length=500, blank=True)
    line_ref = models.CharField(max_length=40, blank=True)
    received_at = models.DateTimeField(db_default=Now())
    invoice_line = models.ForeignKey(
        "billing.InvoiceLine", null=True, blank=True, on_delete=models.SET_NULL, related_name="time_entries"
    )

    class Meta:
        ordering = ["work_date", "id"]
        verbose_name_plural = "time entries"
        indexes = [
            models.Index(fields=["contract", "work_date"], name="time_contract_date"),
            models.Index(
                fields=["contract"], condition=Q(invoice_line__isnull=True, billable=True), name="time_unbilled"
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(hours__gt=0) & Q(hours__lte=24), name="time_hours_in_a_day"),
        ]

    def __str__(self) -> str:
        return f"{self.person} {self.hours}h {self.work_date}"


class DeliveryEventKind(models.TextChoices):
    MILESTONE_COMPLETED = "milestone_completed", "Milestone completed"
    SCOPE_CHANGED = "scope_changed", "Scope changed"


class DeliveryEvent(models.Model):
    """Inbox of delivery facts from the API, the UI and project tools; processed by a task.

    A row with ``processed_at`` null was stored but not handled yet (broker down, worker killed):
    the sweep picks it up.
    """

    source = models.CharField(max_length=50)
    kind = models.CharField(max_length=30, choices=DeliveryEventKind.choices)
    external_id = models.CharField(max_length=200)
    contract = models.ForeignKey("contracts.Contract", on_delete=models.PROTECT, related_name="delivery_events")
    payload = models.JSONField(default=dict, blank=True)
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField(db_default=Now())
    processed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["received_at", "id"]
        constraints = [models.UniqueConstraint(fields=["source", "external_id"], name="delivery_event_once")]
        indexes = [
            models.Index(fields=["received_at"], condition=Q(processed_at__isnull=True), name="delivery_unprocessed")
        ]

    def __str__(self) -> str:
        return f"{self.source}:{self.external_id} {self.kind}"


# --------------------------------------------------------------------------- invoices


class InvoiceStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    ISSUED = "issued", "Issued"
    SENT = "sent", "Sent"
    PARTIALLY_PAID = "partially_paid", "Partially paid"
    PAID = "paid", "Paid"
    VOID = "void", "Void"


class Invoice(models.Model):
    """A bill to one customer under one contract and one set of terms.

    Drafts have no number; ``invoice_issue`` assigns the next number of the issuing entity's
    sequence. Once issued, only the lifecycle columns (status, sent/paid/credited markers) may
    change; the database refuses anything else (migration 0002).
    """

    contract = models.ForeignKey("contracts.Contract", on_delete=models.PROTECT, related_name="invoices")
    customer = models.ForeignKey("contracts.Customer", on_delete=models.PROTECT, related_name="invoices")
    issuing_entity = models.ForeignKey("contracts.IssuingEntity", on_delete=models.PROTECT, related_name="invoices")
    version = models.ForeignKey("contracts.ContractVersion", on_delete=models.PROTECT, related_name="invoices")
    number = models.CharField(max_length=40, null=True, blank=True, unique=True)
    status = models.CharField(max_length=16, choices=InvoiceStatus.choices, default=InvoiceStatus.DRAFT)
    currency = models.CharField(max_length=3, choices=CURRENCIES)
    billing_date = models.DateField(help_text="The as-of date of the run that created it.")
    issue_date = models.DateField(null=True, blank=True)
    due_date = models.DateField(null=True, blank=True)
    po_number = models.CharField("PO number", max_length=100, blank=True)
    payment_terms_days = models.PositiveSmallIntegerField()
    subtotal = money_field(default=ZERO)
    discount_total = money_field(default=ZERO)
    tax_total = money_field(default=ZERO)
    total = money_field(default=ZERO)
    credit_applied = money_field(default=ZERO)
    amount_due = money_field(default=ZERO)
    hold_reasons = ArrayField(models.CharField(max_length=500), default=list, blank=True)
    # Tax as determined for the issue date (revexos/tax.py): the treatment, the summary per rate
    # ([{name, rate, category, country, taxable, amount, reverse_charge, lines: [line positions]}]) and the
    # legal mention printed on the invoice. Part of the issued document, so frozen with it.
    tax_treatment = models.CharField(max_length=16, blank=True)
    tax_lines = models.JSONField(default=list, blank=True)
    tax_note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    issued_at = models.DateTimeField(null=True, blank=True)
    # Lifecycle columns: the only ones that may move after issue.
    sent_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    amount_paid = money_field(default=ZERO)
    credited_total = money_field(default=ZERO)
    # Collections (receivables/ keeps them; migration 0004 lets them move after issue).
    paid_on = models.DateField(null=True, blank=True, help_text="The day the payment that settled it was received.")
    written_off = money_field(default=ZERO)
    disputed_at = models.DateTimeField(null=True, blank=True, help_text="A card payment on it is disputed.")
    pay_token = models.CharField(max_length=64, null=True, blank=True, unique=True)
    # What the customer still owes: the amount due less credit notes, payments and write-offs.
    # Computed by PostgreSQL, so it can never drift from the columns it is made of; its CHECK
    # below is what stops an allocation from exceeding the open amount.
    amount_open = models.GeneratedField(
        expression=Greatest(F("amount_due") - F("credited_total"), Value(ZERO)) - F("amount_paid") - F("written_off"),
        output_field=models.DecimalField(max_digits=20, decimal_places=6),
        db_persist=True,
    )
    history = HistoricalRecords(excluded_fields=["amount_open"])

    class Meta:
        ordering = ["-billing_date", "-id"]
        indexes = [
            models.Index(fields=["contract", "status"], name="invoice_contract_status"),
            models.Index(fields=["status", "issue_date"], name="invoice_status_issued"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(subtotal__gte=0)
                & Q(discount_total__gte=0)
                & Q(tax_total__gte=0)
                & Q(total__gte=0)
                & Q(credit_applied__gte=0)
                & Q(amount_due__gte=0)
                & Q(amount_paid__gte=0)
                & Q(credited_total__gte=0)
                & Q(written_off__gte=0),
                name="invoice_amounts_non_negative",
            ),
            # Payments and write-offs never exceed what is collectible (amount due less credit notes).
            models.CheckConstraint(condition=Q(amount_open__gte=0), name="invoice_open_not_negative"),
            models.CheckConstraint(
                condition=Q(credited_total__lte=models.F("total")), name="invoice_credited_within_total"
            ),
            models.CheckConstraint(
                condition=Q(status="draft")
                | (Q(number__isnull=False) & Q(issue_date__isnull=False) & Q(due_date__isnull=False)),
                name="invoice_issued_has_number_and_dates",
            ),
            models.CheckConstraint(
                condition=Q(due_date__isnull=True) | Q(due_date__gte=models.F("issue_date")),
                name="invoice_due_not_before_issue",
            ),
        ]

    def __str__(self) -> str:
        return self.number or f"Draft #{self.pk}"

    def payment_status(self, today=None) -> str:
        """unpaid, partially_paid, paid, overdue (derived from the due date) or written_off; ""
        for drafts and voided invoices (DESIGN.md §5.1)."""
        return invoice_payment_status(
            status=self.status,
            amount_open=self.amount_open,
            amount_paid=self.amount_paid,
            written_off=self.written_off,
            due_date=self.due_date,
            today=today,
        )


class PaymentStatus(models.TextChoices):
    UNPAID = "unpaid", "Unpaid"
    PARTIALLY_PAID = "partially_paid", "Partially paid"
    PAID = "paid", "Paid"
    OVERDUE = "overdue", "Overdue"
    WRITTEN_OFF = "written_off", "Written off"


def invoice_payment_status(*, status, amount_open, amount_paid, written_off, due_date, today=None) -> str:
    """The one rule for an invoice's payment status (API, list, badges, PDF)."""
    if status in ("draft", "void"):
        return ""
    if amount_open is None:  # not read back from the database yet
        return ""
    if amount_open <= 0:
        if written_off > 0:
            return PaymentStatus.WRITTEN_OFF
        return PaymentStatus.PAID
    if today is None:
        from revexos.dates import tenant_today

        today = tenant_today()
    if due_date is not None and due_date < today:
        return PaymentStatus.OVERDUE
    return PaymentStatus.PARTIALLY_PAID if amount_paid > 0 else PaymentStatus.UNPAID


class InvoiceLineKind(models.TextChoices):
    RECURRING = "recurring", "Recurring"
    OVERAGE = "overage", "Overage hours"
    FIXED_FEE = "fixed_fee", "Fixed fee"
    MILESTONE = "milestone", "Milestone"
    TIME_AND_MATERIALS = "time_and_materials", "Time & materials"
    USAGE = "usage", "Usage"
    USAGE_MINIMUM = "usage_minimum", "Usage minimum commitment"


class InvoiceLine(models.Model):
    """One billed obligation. ``billing_key`` names the obligation; it is unique in the tenant."""

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    # Denormalised from the invoice: "what was billed for this contract" is one index scan,
    # the first read of every billing evaluation.
    contract = models.ForeignKey("contracts.Contract", on_delete=models.PROTECT, related_name="+")
    position = models.PositiveSmallIntegerField(default=0)
    kind = models.CharField(max_length=20, choices=InvoiceLineKind.choices)
    description = models.CharField(max_length=300)
    quantity = quantity_field(default=Decimal("1"))
    unit_amount = money_field(default=ZERO)
    amount = money_field(default=ZERO)
    period_start = models.DateField(null=True, blank=True)
    period_end = models.DateField(null=True, blank=True)
    price_line = models.ForeignKey(
        "contracts.PriceLine", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    line_ref = models.CharField(max_length=40, blank=True)
    milestone = models.ForeignKey(
        "contracts.Milestone", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    billing_key = models.CharField(max_length=200, unique=True)
    source = models.JSONField(
        default=dict, blank=True, help_text="Where the amount came from: aggregates, counts, proration."
    )

    class Meta:
        ordering = ["invoice", "position", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(amount__gte=0) & Q(quantity__gte=0) & Q(unit_amount__gte=0),
                name="invoice_line_non_negative",
            ),
            models.CheckConstraint(
                condition=Q(period_start__isnull=True)
                | Q(period_end__isnull=True)
                | Q(period_end__gte=models.F("period_start")),
                name="invoice_line_period_ordered",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.description}: {self.amount}"


class CreditNote(models.Model):
    """Reduces (or voids) an issued invoice. Numbered from the issuing entity's credit-note sequence;
    the sum of an invoice's credit notes never exceeds its total."""

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="credit_notes")
    number = models.CharField(max_length=40, unique=True)
    issue_date = models.DateField()
    currency = models.CharField(max_length=3, choices=CURRENCIES)
    amount = money_field()
    # The tax it reverses: the credited share of each of the invoice's tax lines (revexos/tax.py).
    tax_amount = money_field(default=ZERO)
    tax_lines = models.JSONField(default=list, blank=True)
    reason = models.CharField(max_length=500)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-issue_date", "-id"]
        constraints = [models.CheckConstraint(condition=Q(amount__gt=0), name="credit_note_amount_positive")]

    def __str__(self) -> str:
        return self.number


class NumberSequenceKind(models.TextChoices):
    INVOICE = "invoice", "Invoice"
    CREDIT_NOTE = "credit_note", "Credit note"


class NumberSequence(models.Model):
    """The last number used per issuing entity and document kind. Incremented only inside the
    issuing transaction (row lock until commit), so a rollback gives the number back: no gaps."""

    issuing_entity = models.ForeignKey("contracts.IssuingEntity", on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=12, choices=NumberSequenceKind.choices)
    last_value = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["issuing_entity", "kind"], name="number_sequence_one_per_entity")
        ]

    def __str__(self) -> str:
        return f"{self.issuing_entity_id}/{self.kind}: {self.last_value}"


# --------------------------------------------------------------------------- review and runs


class ReviewTaskKind(models.TextChoices):
    SCOPE_CHANGE = "scope_change", "Scope change"
    BUDGET_OVERRUN = "budget_overrun", "Hours over a fixed-fee budget"
    UNKNOWN_MILESTONE = "unknown_milestone", "Unknown milestone"
    UNASSIGNED_TIME = "unassigned_time", "Time no price line takes"
    CAP_REACHED = "cap_reached", "Not-to-exceed cap reached"
    PRESEND_CHECK = "presend_check", "Failed pre-send check"
    USAGE_CORRECTION = "usage_correction", "Late usage lowers an invoiced charge"
    BILLING_ERROR = "billing_error", "Billing error"
    LEAKAGE = "leakage", "Leakage finding"
    DUNNING_FINAL = "dunning_final", "Final payment notice sent"
    PAYMENT_DISPUTE = "payment_dispute", "Card payment disputed"


class ReviewTaskStatus(models.TextChoices):
    OPEN = "open", "Open"
    RESOLVED = "resolved", "Resolved"


class BillingReviewTask(models.Model):
    """Something a person in finance must look at. ``dedupe_key`` makes raising it idempotent."""

    kind = models.CharField(max_length=20, choices=ReviewTaskKind.choices)
    contract = models.ForeignKey(
        "contracts.Contract", null=True, blank=True, on_delete=models.CASCADE, related_name="review_tasks"
    )
    invoice = models.ForeignKey(Invoice, null=True, blank=True, on_delete=models.CASCADE, related_name="review_tasks")
    title = models.CharField(max_length=300)
    detail = models.TextField(blank=True)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="billing_review_tasks"
    )
    status = models.CharField(max_length=10, choices=ReviewTaskStatus.choices, default=ReviewTaskStatus.OPEN)
    resolution = models.TextField(blank=True)
    dedupe_key = models.CharField(max_length=200, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "kind"], name="review_status_kind")]

    def __str__(self) -> str:
        return self.title


class BillingRunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    COMPLETED_WITH_ERRORS = "completed_with_errors", "Completed with errors"
    FAILED = "failed", "Failed"


RUN_FINISHED = (BillingRunStatus.SUCCEEDED, BillingRunStatus.COMPLETED_WITH_ERRORS, BillingRunStatus.FAILED)


class BillingRun(models.Model):
    """One cycle run as of a date (POST /api/v1/runs or the beat), with what it did.

    A run that works through chunks holds a lease (``lease_until``) that its executor renews as it
    goes: a run whose lease ran out was abandoned (worker killed, web process gone) and is taken
    over by whoever finds it — the next delivery of its task or the runs sweep — and resumed from
    its chunks; after ``attempts`` takeovers it fails instead of looping.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    as_of = models.DateField()
    only = ArrayField(models.CharField(max_length=40), default=list, blank=True)
    trigger = models.CharField(max_length=10, default="api", help_text="api or beat")
    status = models.CharField(max_length=24, choices=BillingRunStatus.choices, default=BillingRunStatus.QUEUED)
    summary = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    errors_count = models.PositiveIntegerField(default=0, help_text="Contracts that could not be billed.")
    steps_done = ArrayField(models.CharField(max_length=40), default=list, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0, help_text="Executions started (takeovers included).")
    lease_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # The sweep's question (runs queued too long or abandoned) and the beat's (today's run).
            models.Index(fields=["status", "created_at"], name="run_status_created"),
            models.Index(fields=["trigger", "as_of"], name="run_trigger_as_of"),
        ]

    def __str__(self) -> str:
        return f"run as of {self.as_of} ({self.status})"


class BillingRunChunkStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    DONE = "done", "Done"


class BillingRunChunk(models.Model):
    """A slice of a run's contracts for one step: claimed by one worker at a time under a lease, and
    marked done in the same transaction that bills it, so a killed worker's chunk is simply redone."""

    run = models.ForeignKey(BillingRun, on_delete=models.CASCADE, related_name="chunks")
    step = models.CharField(max_length=40)
    seq = models.PositiveIntegerField()
    contract_ids = ArrayField(models.BigIntegerField())
    status = models.CharField(
        max_length=8, choices=BillingRunChunkStatus.choices, default=BillingRunChunkStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    lease_until = models.DateTimeField(null=True, blank=True)
    summary = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "step", "seq"]
        constraints = [models.UniqueConstraint(fields=["run", "step", "seq"], name="run_chunk_once")]
        indexes = [models.Index(fields=["run", "step"], condition=~Q(status="done"), name="run_chunk_open")]

    def __str__(self) -> str:
        return f"{self.run_id} {self.step} #{self.seq} ({self.status})"


# --------------------------------------------------------------------------- delivery (outbox)


class DeliveryStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


class DeliveryKind(models.TextChoices):
    INITIAL = "initial", "On issue"
    RESEND = "resend", "Resent on request"
    REMINDER = "reminder", "Payment reminder"


class InvoiceDelivery(models.Model):
    """One e-mail of an issued invoice to the customer's billing contacts: the outbox row.

    The row is written in the same transaction as the decision to send (issuing, or a resend),
    and the send task is enqueued on commit. ``idempotency_key`` is unique: an invoice has one
    initial delivery however often issuing is retried, and each resend its own row. The task
    moves queued/failed → sending → sent; a row already sending or sent is skipped, so a retried
    or redelivered task sends once. ``message_id`` is fixed when the row is created, so if a
    worker dies after the SMTP server accepted the mail, the retry carries the same Message-ID
    and the recipient's mail system can tell it is the same message.
    """

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="deliveries")
    kind = models.CharField(max_length=8, choices=DeliveryKind.choices, default=DeliveryKind.INITIAL)
    idempotency_key = models.CharField(max_length=200, unique=True)
    recipients = ArrayField(models.EmailField(), default=list)
    subject = models.CharField(max_length=300)
    status = models.CharField(max_length=8, choices=DeliveryStatus.choices, default=DeliveryStatus.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(
        null=True, blank=True, help_text="When the sweep tries again; empty when given up or done."
    )
    message_id = models.CharField(max_length=250)
    pdf_name = models.CharField(max_length=300, blank=True, help_text="The stored PDF that was attached.")
    body = models.TextField(blank=True, help_text="The message text, when it is not the invoice's own (reminders).")
    label = models.CharField(max_length=100, blank=True, help_text="What this e-mail is, e.g. the dunning step.")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    sending_started_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "invoice deliveries"
        indexes = [
            # The sweep's question: what is due to be (re)tried? That set stays small.
            models.Index(
                fields=["next_attempt_at"], condition=Q(status__in=["queued", "failed", "sending"]), name="delivery_due"
            ),
            models.Index(fields=["invoice", "-created_at"], name="delivery_invoice_recent"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(status="sent") | Q(sent_at__isnull=False), name="delivery_sent_has_date"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.invoice} → {', '.join(self.recipients)} ({self.status})"


# Invoices billed by another system before RevExOS (onboarding history); their own module.
from billing.models_history import (  # noqa: E402, F401
    ExternalInvoice,
    ExternalInvoiceLine,
    HistoryImport,
)
