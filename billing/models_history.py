"""Invoices billed by another system before RevExOS (onboarding history), as read from its export.

They are facts about the past, never documents RevExOS issues: no numbering, no PDF, no e-mail,
no billing key. Each is matched, when it can be, to a contract and each of its lines to a price
line and a billing period (``billing.services.history``), so what was billed before the cut-over
counts in the contract's billed value, DSO and the audit's comparison with what the contract says.

``(source, number)`` is unique: an invoice of the old system is imported once.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q

from revexos.money import CURRENCIES

ZERO = Decimal("0")


def _money(**kwargs) -> models.DecimalField:
    kwargs.setdefault("max_digits", 20)
    kwargs.setdefault("decimal_places", 6)
    return models.DecimalField(**kwargs)


class ExternalSource(models.TextChoices):
    XERO = "xero", "Xero"
    QUICKBOOKS = "quickbooks", "QuickBooks Online"


class ExternalInvoiceKind(models.TextChoices):
    INVOICE = "invoice", "Invoice"
    CREDIT_NOTE = "credit_note", "Credit note"


class ExternalInvoiceStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    SUBMITTED = "submitted", "Awaiting approval"
    AUTHORISED = "authorised", "Awaiting payment"
    PAID = "paid", "Paid"
    VOID = "void", "Voided"


# Sent to the customer: these count as billed. Drafts and voided invoices never reached anyone.
BILLED_EXTERNAL_STATUSES = (ExternalInvoiceStatus.AUTHORISED, ExternalInvoiceStatus.PAID)


class MatchMethod(models.TextChoices):
    CONTRACT_NUMBER = "contract_number", "Contract number in the reference"
    PO_NUMBER = "po_number", "PO number in the reference"
    CUSTOMER = "customer", "Customer, line description and dates"
    UNMATCHED = "unmatched", "Not matched"


class HistoryImport(models.Model):
    """One upload of another system's invoice export."""

    source = models.CharField(max_length=12, choices=ExternalSource.choices)
    file_name = models.CharField(max_length=255)
    date_format = models.CharField(max_length=4, blank=True, help_text="dmy or mdy when the file's dates needed it.")
    invoice_count = models.PositiveIntegerField(default=0)
    line_count = models.PositiveIntegerField(default=0)
    matched_line_count = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_source_display()} · {self.file_name}"


class ExternalInvoice(models.Model):
    history_import = models.ForeignKey(HistoryImport, on_delete=models.CASCADE, related_name="invoices")
    source = models.CharField(max_length=12, choices=ExternalSource.choices)
    number = models.CharField(max_length=100)
    kind = models.CharField(max_length=12, choices=ExternalInvoiceKind.choices, default=ExternalInvoiceKind.INVOICE)
    status = models.CharField(
        max_length=12, choices=ExternalInvoiceStatus.choices, default=ExternalInvoiceStatus.AUTHORISED
    )
    contact_name = models.CharField(max_length=200)
    contact_email = models.CharField(max_length=254, blank=True)
    reference = models.CharField(max_length=255, blank=True, help_text="Xero Reference / QuickBooks Memo.")
    terms = models.CharField(max_length=100, blank=True)
    customer = models.ForeignKey(
        "contracts.Customer", null=True, blank=True, on_delete=models.SET_NULL, related_name="external_invoices"
    )
    contract = models.ForeignKey(
        "contracts.Contract", null=True, blank=True, on_delete=models.SET_NULL, related_name="external_invoices"
    )
    match_method = models.CharField(max_length=16, choices=MatchMethod.choices, default=MatchMethod.UNMATCHED)
    issue_date = models.DateField()
    due_date = models.DateField()
    currency = models.CharField(max_length=3, choices=CURRENCIES)
    subtotal = _money(default=ZERO, help_text="Lines after line discounts, without tax.")
    tax_total = _money(default=ZERO)
    total = _money(default=ZERO)
    amount_paid = _money(null=True, blank=True)
    amount_due = _money(null=True, blank=True, help_text="Open when the export was taken.")
    paid_on = models.DateField(null=True, blank=True)
    source_row = models.PositiveIntegerField(help_text="The file row of its first line.")

    class Meta:
        ordering = ["issue_date", "number"]
        indexes = [
            models.Index(fields=["contract", "issue_date"], name="ext_invoice_contract_date"),
            models.Index(fields=["customer", "issue_date"], name="ext_invoice_customer_date"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["source", "number"], name="ext_invoice_number_once"),
            models.CheckConstraint(
                condition=Q(due_date__gte=models.F("issue_date")), name="ext_invoice_due_after_issue"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.number} ({self.get_source_display()})"

    @property
    def payment_terms_days(self) -> int:
        return (self.due_date - self.issue_date).days

    @property
    def counts_as_billed(self) -> bool:
        return self.status in BILLED_EXTERNAL_STATUSES


class ExternalInvoiceLine(models.Model):
    invoice = models.ForeignKey(ExternalInvoice, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveSmallIntegerField(default=0)
    source_row = models.PositiveIntegerField()
    description = models.CharField(max_length=500, blank=True)
    item_code = models.CharField(max_length=100, blank=True)
    account_code = models.CharField(max_length=50, blank=True)
    quantity = _money(default=Decimal("1"))
    unit_amount = _money(null=True, blank=True)
    discount_percent = _money(default=ZERO)
    amount = _money(help_text="After the line discount, without tax.")
    tax_amount = _money(default=ZERO)
    service_date = models.DateField(null=True, blank=True)
    # The match: which obligation of which contract this line billed.
    contract = models.ForeignKey(
        "contracts.Contract", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    line_ref = models.CharField(max_length=40, blank=True)
    kind = models.CharField(max_length=20, blank=True, help_text="The matched price line's kind.")
    period_start = models.DateField(null=True, blank=True)
    period_end = models.DateField(null=True, blank=True)
    obligation_key = models.CharField(
        max_length=200,
        blank=True,
        help_text="kind:contract:line_ref[:period_start] — the obligation billed; two lines with one key bill it twice.",
    )
    match_note = models.CharField(max_length=300, blank=True, help_text="How the line was matched, or why not.")

    class Meta:
        ordering = ["invoice", "position", "id"]
        indexes = [models.Index(fields=["contract", "obligation_key"], name="ext_line_obligation")]

    def __str__(self) -> str:
        return f"{self.description}: {self.amount}"

    @property
    def gross_amount(self) -> Decimal:
        """Before the line's discount (see ``billing.history_formats.ExportLine.gross_amount``)."""
        if self.unit_amount is None or not self.discount_percent:
            return self.amount
        return self.quantity * self.unit_amount
