"""The contract is the source of truth for what should be billed (DESIGN.md §3).

A Contract holds the identity and lifecycle; its terms live in ContractVersions. The version in
force on a date is the one with the latest ``effective_from`` on or before it; billing for a period
uses the version in force at the period's start. PriceLines belong to a version; ``line_ref`` names
the same obligation across versions, so billing keys survive amendments.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from django.utils import timezone
from simple_history.models import HistoricalRecords

from revexos.addresses import address_lines
from revexos.money import CURRENCIES


class ExactDecimalField(models.DecimalField):
    """A decimal stored as PostgreSQL ``numeric`` without a fixed scale.

    Why: the API promises that a contract round-trips unchanged (DESIGN.md §5), so "3100.00"
    comes back as "3100.00", "0" as "0" and "0.0015" as "0.0015". ``numeric(20, 6)`` would pad
    every value to six places and lose what the client sent. ``max_digits`` and
    ``decimal_places`` still bound the values: the services and Django's validators enforce them.
    """

    def db_type(self, connection):
        return "numeric"

    def cast_db_type(self, connection):
        return "numeric"


def money_field(**kwargs) -> ExactDecimalField:
    """Amounts and rates: up to 6 decimals so unit prices like 0.0015 per API call are exact."""
    kwargs.setdefault("max_digits", 20)
    kwargs.setdefault("decimal_places", 6)
    return ExactDecimalField(**kwargs)


def quantity_field(**kwargs) -> ExactDecimalField:
    kwargs.setdefault("max_digits", 20)
    kwargs.setdefault("decimal_places", 6)
    return ExactDecimalField(**kwargs)


def percent_field(**kwargs) -> ExactDecimalField:
    kwargs.setdefault("max_digits", 9)
    kwargs.setdefault("decimal_places", 6)
    return ExactDecimalField(**kwargs)


class Address(models.Model):
    address_line1 = models.CharField("address line 1", max_length=200, blank=True)
    address_line2 = models.CharField("address line 2", max_length=200, blank=True)
    city = models.CharField(max_length=100, blank=True)
    region = models.CharField("state / region", max_length=100, blank=True)
    postal_code = models.CharField(max_length=20, blank=True)
    country = models.CharField(max_length=2, blank=True, help_text="ISO 3166-1 alpha-2, e.g. GB")

    class Meta:
        abstract = True

    @property
    def address_lines(self) -> list[str]:
        """The address in its country's layout, country named in words."""
        return self.address_lines_from()

    def address_lines_from(self, home_country: str = "") -> list[str]:
        """As read from ``home_country``: a domestic address leaves the country out."""
        return address_lines(
            line1=self.address_line1,
            line2=self.address_line2,
            city=self.city,
            region=self.region,
            postal_code=self.postal_code,
            country=self.country,
            home_country=home_country,
        )


class IssuingEntity(Address):
    """One of the tenant's own legal entities; each has its own gapless invoice numbering."""

    legal_name = models.CharField(max_length=200, unique=True)
    tax_id = models.CharField("tax id", max_length=50, blank=True)
    currency = models.CharField(max_length=3, choices=CURRENCIES, default="USD")
    bank_details = models.TextField(blank=True, help_text="Shown on invoices as payment instructions.")
    email = models.EmailField("billing contact e-mail", blank=True)
    invoice_prefix = models.CharField(
        max_length=20,
        unique=True,
        help_text="Invoice numbers read <prefix><year>-<sequence>, e.g. INV-2026-000042.",
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["legal_name"]
        verbose_name_plural = "issuing entities"

    def __str__(self) -> str:
        return self.legal_name


class TaxCategory(models.TextChoices):
    STANDARD = "standard", "Standard"
    REDUCED = "reduced", "Reduced"
    SUPER_REDUCED = "super_reduced", "Second reduced"
    ZERO = "zero", "Zero-rated"
    EXEMPT = "exempt", "Exempt"


class Customer(Address):
    external_id = models.CharField(
        max_length=100,
        unique=True,
        help_text="Your id for the customer (e.g. acme-ltd); the API accepts it wherever a customer is named.",
    )
    legal_name = models.CharField(max_length=200)
    billing_emails = ArrayField(models.EmailField(), default=list, blank=True)
    tax_id = models.CharField("tax id", max_length=50, blank=True)
    currency = models.CharField(max_length=3, choices=CURRENCIES, default="USD")
    crm_id = models.CharField("CRM id", max_length=100, blank=True)
    accounting_id = models.CharField("accounting id", max_length=100, blank=True)
    stripe_customer_id = models.CharField("Stripe customer id", max_length=100, blank=True)
    # Tax status (DESIGN.md §4): a valid tax id makes a business customer abroad reverse-charged;
    # an exempt customer is never taxed and the reason or certificate is printed on its invoices.
    tax_exempt = models.BooleanField("tax exempt", default=False)
    tax_exempt_reason = models.CharField("exemption reason", max_length=300, blank=True)
    tax_exempt_certificate = models.CharField("exemption certificate number", max_length=100, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="customers",
        help_text="The account manager.",
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["legal_name"]
        indexes = [models.Index(fields=["legal_name"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(tax_exempt=False) | ~Q(tax_exempt_reason="") | ~Q(tax_exempt_certificate=""),
                name="customer_exempt_has_reason",
            )
        ]

    def __str__(self) -> str:
        return self.legal_name


class ContractStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    ACTIVE = "active", "Active"
    EXPIRED = "expired", "Expired"
    TERMINATED = "terminated", "Terminated"
    RENEWED = "renewed", "Renewed"


def signed_document_path(instance, filename: str) -> str:
    # The tenant storage prefixes this with the tenant's schema name.
    return f"contracts/{instance.number}/{filename}"


class Contract(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="contracts")
    issuing_entity = models.ForeignKey(IssuingEntity, on_delete=models.PROTECT, related_name="contracts")
    number = models.CharField(max_length=50, unique=True)
    title = models.CharField(max_length=200)
    status = models.CharField(max_length=12, choices=ContractStatus.choices, default=ContractStatus.ACTIVE)
    start_date = models.DateField()
    end_date = models.DateField(null=True, blank=True, help_text="Empty for an open-ended contract.")
    auto_renew = models.BooleanField(default=False)
    renewal_term_months = models.PositiveSmallIntegerField(default=12)
    notice_period_days = models.PositiveSmallIntegerField(default=30)
    renewal_uplift_pct = percent_field(verbose_name="renewal uplift %", default=Decimal("0"))
    renewal_window_days = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        help_text="Days before the end date to raise the renewal alert; empty uses the tenant default (60).",
    )
    renewal_lead_days = models.PositiveSmallIntegerField(
        default=30,
        db_default=30,
        verbose_name="renewal alert lead time (days)",
        help_text=(
            "Days before the notice deadline the renewal alert must reach its owner: the alert comes at "
            "the renewal window or at notice period + this lead time before the end, whichever is earlier."
        ),
    )
    billed_through = models.DateField(
        null=True,
        blank=True,
        help_text=(
            "Cut-over: the system this contract comes from billed every period up to this date; "
            "RevExOS never bills a period ending on or before it."
        ),
    )
    auto_issue = models.BooleanField(
        null=True,
        blank=True,
        help_text="Issue invoices that pass the checks automatically; empty uses the tenant setting.",
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="contracts",
    )
    signed_document = models.FileField(upload_to=signed_document_path, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-start_date", "number"]
        indexes = [models.Index(fields=["status", "end_date"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(end_date__isnull=True) | Q(end_date__gte=models.F("start_date")),
                name="contract_end_not_before_start",
            ),
            models.CheckConstraint(condition=Q(renewal_uplift_pct__gte=0), name="contract_uplift_non_negative"),
            models.CheckConstraint(condition=Q(renewal_term_months__gte=1), name="contract_renewal_term_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.number} · {self.title}"

    def renewal_window_for(self, tenant_window: int) -> int:
        """Days before the end date the renewal alert is raised: the contract's window (else the
        tenant's), or earlier when the notice period plus the lead time needs it — a 90-day notice
        period with a 60-day window would alert after the notice deadline."""
        window = self.renewal_window_days if self.renewal_window_days is not None else tenant_window
        return max(window, self.notice_period_days + self.renewal_lead_days)


class BillingAnchor(models.TextChoices):
    CALENDAR = "calendar", "Calendar (1st of the month)"
    ANNIVERSARY = "anniversary", "Anniversary (contract start day)"


class ContractVersion(models.Model):
    """The terms in force from ``effective_from``. Never edited once it has taken effect."""

    contract = models.ForeignKey(Contract, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveSmallIntegerField()
    effective_from = models.DateField()
    payment_terms_days = models.PositiveSmallIntegerField(default=30)
    po_number = models.CharField("PO number", max_length=100, blank=True)
    po_required = models.BooleanField("PO required", default=False)
    billing_anchor = models.CharField(max_length=12, choices=BillingAnchor.choices, default=BillingAnchor.CALENDAR)
    currency = models.CharField(max_length=3, choices=CURRENCIES, default="USD")
    # An amendment may move the contract to another of the tenant's legal entities from its date.
    issuing_entity = models.ForeignKey(
        "IssuingEntity",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Issues the invoices under these terms; empty: the contract's issuing entity.",
    )
    reason = models.CharField(max_length=500, blank=True, help_text="Why the terms changed (amendments).")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["contract", "effective_from"]
        constraints = [
            # One version in force per date: the latest effective_from on or before it.
            models.UniqueConstraint(fields=["contract", "effective_from"], name="version_one_per_effective_date"),
            models.UniqueConstraint(fields=["contract", "version"], name="version_number_unique"),
            models.CheckConstraint(condition=Q(version__gte=1), name="version_number_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.contract.number} v{self.version} from {self.effective_from}"

    def issuing_entity_id_for(self, contract: Contract | None = None) -> int:
        """The entity that issues invoices under these terms: the version's own, else the contract's."""
        return self.issuing_entity_id or (contract or self.contract).issuing_entity_id

    def has_taken_effect(self, today: date | None = None) -> bool:
        """A version in force (from today or earlier) is history: it is never edited again."""
        return self.effective_from <= (today or timezone.localdate())


class PriceLineKind(models.TextChoices):
    FIXED_FEE = "fixed_fee", "Fixed fee"
    RECURRING = "recurring", "Recurring"
    MILESTONE = "milestone", "Milestone"
    TIME_AND_MATERIALS = "time_and_materials", "Time & materials"
    USAGE = "usage", "Usage"


class Frequency(models.TextChoices):
    MONTHLY = "monthly", "Monthly"
    QUARTERLY = "quarterly", "Quarterly"
    ANNUAL = "annual", "Annual"


class Timing(models.TextChoices):
    ADVANCE = "advance", "In advance"
    ARREARS = "arrears", "In arrears"


class ChargeModel(models.TextChoices):
    PER_UNIT = "per_unit", "Per unit"
    GRADUATED = "graduated", "Graduated tiers"
    VOLUME = "volume", "Volume tiers"
    PACKAGE = "package", "Package"
    PERCENTAGE = "percentage", "Percentage of amount"
    GRADUATED_PERCENTAGE = "graduated_percentage", "Graduated percentage"


class Aggregation(models.TextChoices):
    SUM = "sum", "Sum of quantity"
    COUNT = "count", "Count of events"
    MAX = "max", "Maximum quantity"
    UNIQUE_COUNT = "unique_count", "Unique count of a property"


class PriceLine(models.Model):
    """One pricing rule of a contract version. Which fields apply depends on ``kind``."""

    version = models.ForeignKey(ContractVersion, on_delete=models.CASCADE, related_name="price_lines")
    line_ref = models.CharField(max_length=40, help_text="Stable across versions: the same obligation keeps its ref.")
    position = models.PositiveSmallIntegerField(default=0)
    kind = models.CharField(max_length=20, choices=PriceLineKind.choices)
    description = models.CharField(max_length=200)
    # fixed_fee, recurring, milestone
    amount = money_field(null=True, blank=True)
    bill_on = models.DateField(null=True, blank=True, help_text="Fixed fee: the date it is billed.")
    # recurring, usage
    frequency = models.CharField(max_length=10, choices=Frequency.choices, blank=True)
    timing = models.CharField(max_length=8, choices=Timing.choices, blank=True)
    included_hours = quantity_field(null=True, blank=True)
    overage_rate = money_field(null=True, blank=True)
    # milestone
    reference = models.CharField(
        max_length=100, blank=True, help_text="Milestone: its key in the project tool, e.g. PROJ-12."
    )
    expected_date = models.DateField(null=True, blank=True)
    percent_of_fixed_fee = percent_field(
        null=True,
        blank=True,
        help_text="Milestone: a share of the version's fixed-fee total instead of an amount.",
    )
    # time_and_materials
    cap = money_field(null=True, blank=True, help_text="Not-to-exceed cap over the contract.")
    # usage
    metric = models.CharField(max_length=100, blank=True)
    aggregation = models.CharField(max_length=12, choices=Aggregation.choices, blank=True)
    aggregation_property = models.CharField(max_length=100, blank=True)
    charge_model = models.CharField(max_length=24, choices=ChargeModel.choices, blank=True)
    unit_amount = money_field(null=True, blank=True)
    package_size = quantity_field(null=True, blank=True)
    rate = percent_field(null=True, blank=True, help_text="Percent of each amount.")
    fixed_amount = money_field(null=True, blank=True)
    per_transaction_min = money_field(null=True, blank=True)
    per_transaction_max = money_field(null=True, blank=True)
    free_units = quantity_field(default=Decimal("0"))
    free_amount = money_field(null=True, blank=True)
    minimum_commitment = money_field(default=Decimal("0"))
    threshold_amount = money_field(
        null=True,
        blank=True,
        help_text="Usage: issue an interim invoice when unbilled usage reaches this value.",
    )
    tax_category = models.CharField(max_length=16, choices=TaxCategory.choices, default=TaxCategory.STANDARD)
    history = HistoricalRecords()

    class Meta:
        ordering = ["version", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["version", "line_ref"], name="price_line_ref_unique_in_version"),
            models.CheckConstraint(
                condition=Q(amount__isnull=True) | Q(amount__gte=0), name="price_line_amount_non_negative"
            ),
            models.CheckConstraint(
                condition=(
                    (Q(included_hours__isnull=True) | Q(included_hours__gte=0))
                    & (Q(overage_rate__isnull=True) | Q(overage_rate__gte=0))
                    & (Q(cap__isnull=True) | Q(cap__gte=0))
                    & (Q(unit_amount__isnull=True) | Q(unit_amount__gte=0))
                    & (Q(package_size__isnull=True) | Q(package_size__gt=0))
                    & (Q(rate__isnull=True) | Q(rate__gte=0))
                    & (Q(fixed_amount__isnull=True) | Q(fixed_amount__gte=0))
                    & (Q(per_transaction_min__isnull=True) | Q(per_transaction_min__gte=0))
                    & (Q(per_transaction_max__isnull=True) | Q(per_transaction_max__gte=0))
                    & (Q(free_amount__isnull=True) | Q(free_amount__gte=0))
                    & (Q(threshold_amount__isnull=True) | Q(threshold_amount__gt=0))
                    & Q(free_units__gte=0)
                    & Q(minimum_commitment__gte=0)
                ),
                name="price_line_values_non_negative",
            ),
            models.CheckConstraint(
                condition=~Q(kind="recurring") | (Q(amount__isnull=False) & ~Q(frequency="") & ~Q(timing="")),
                name="price_line_recurring_complete",
            ),
            models.CheckConstraint(
                condition=~Q(kind="fixed_fee") | Q(amount__isnull=False),
                name="price_line_fixed_fee_has_amount",
            ),
            models.CheckConstraint(
                condition=~Q(kind="milestone") | Q(amount__isnull=False) | Q(percent_of_fixed_fee__isnull=False),
                name="price_line_milestone_has_amount",
            ),
            models.CheckConstraint(
                condition=~Q(kind="usage") | (~Q(metric="") & ~Q(charge_model="") & ~Q(frequency="")),
                name="price_line_usage_complete",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.description} ({self.get_kind_display()})"


class PriceTier(models.Model):
    """A tier of a graduated, volume or graduated-percentage usage line; ``up_to`` is inclusive."""

    price_line = models.ForeignKey(PriceLine, on_delete=models.CASCADE, related_name="tiers")
    position = models.PositiveSmallIntegerField()
    up_to = quantity_field(null=True, blank=True, help_text="Empty for the last, unbounded tier.")
    unit_amount = money_field(default=Decimal("0"))
    flat_amount = money_field(default=Decimal("0"))
    rate = percent_field(default=Decimal("0"))
    history = HistoricalRecords()

    class Meta:
        ordering = ["price_line", "position"]
        constraints = [
            models.UniqueConstraint(fields=["price_line", "position"], name="tier_position_unique"),
            # Only one unbounded tier per line; that it is the last is checked with the whole set.
            models.UniqueConstraint(fields=["price_line"], condition=Q(up_to__isnull=True), name="tier_one_unbounded"),
            models.CheckConstraint(
                condition=(Q(up_to__isnull=True) | Q(up_to__gt=0))
                & Q(unit_amount__gte=0)
                & Q(flat_amount__gte=0)
                & Q(rate__gte=0),
                name="tier_values_non_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"tier {self.position} up to {self.up_to if self.up_to is not None else '∞'}"


class RateCardEntry(models.Model):
    """An hourly rate by role for a time-and-materials line."""

    price_line = models.ForeignKey(PriceLine, on_delete=models.CASCADE, related_name="rates")
    role = models.CharField(max_length=100)
    hourly_rate = money_field()
    history = HistoricalRecords()

    class Meta:
        ordering = ["price_line", "role"]
        constraints = [
            models.UniqueConstraint(fields=["price_line", "role"], name="rate_card_role_unique"),
            models.CheckConstraint(condition=Q(hourly_rate__gte=0), name="rate_card_rate_non_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.role} at {self.hourly_rate}/h"


class MilestoneStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    INVOICED = "invoiced", "Invoiced"
    CANCELLED = "cancelled", "Cancelled"


class Milestone(models.Model):
    """Delivery state of a milestone price line (one per contract and ``line_ref``)."""

    contract = models.ForeignKey(Contract, on_delete=models.CASCADE, related_name="milestones")
    line_ref = models.CharField(max_length=40)
    name = models.CharField(max_length=200)
    reference = models.CharField(max_length=100, blank=True)
    expected_date = models.DateField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=MilestoneStatus.choices, default=MilestoneStatus.PENDING)
    delivered_at = models.DateTimeField(null=True, blank=True)
    delivered_source = models.CharField(max_length=50, blank=True, help_text="api, ui, jira, …")
    history = HistoricalRecords()

    class Meta:
        ordering = ["contract", "expected_date", "id"]
        constraints = [
            models.UniqueConstraint(fields=["contract", "line_ref"], name="milestone_line_unique"),
            models.UniqueConstraint(
                fields=["contract", "reference"], condition=~Q(reference=""), name="milestone_reference_unique"
            ),
            models.CheckConstraint(
                condition=~Q(status__in=["delivered", "invoiced"]) | Q(delivered_at__isnull=False),
                name="milestone_delivered_has_date",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_status_display()})"


class TaxRate(models.Model):
    """A tax rate of the tenant (DESIGN.md §4): the rate of one category in one country (or region)
    from ``valid_from`` on. A change of rate is a new row from its date; the invoices issued before
    keep the rate they were issued with (they store it), so a rate row is safe to correct."""

    name = models.CharField(
        max_length=100, help_text="Shown on invoices and exported as the tax type, e.g. UK VAT 20%."
    )
    country = models.CharField(max_length=2, help_text="ISO 3166-1 alpha-2, e.g. GB")
    region = models.CharField(
        max_length=20, blank=True, help_text="A state or province (US, CA), e.g. NY; empty for the whole country."
    )
    category = models.CharField(max_length=16, choices=TaxCategory.choices, default=TaxCategory.STANDARD)
    rate = percent_field(help_text="Percent, e.g. 20 for 20 %.")
    valid_from = models.DateField(help_text="Applies to invoices issued on or after this date.")
    note = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["country", "region", "category", "-valid_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["country", "region", "category", "valid_from"], name="tax_rate_one_per_date"
            ),
            models.CheckConstraint(condition=Q(rate__gte=0) & Q(rate__lte=100), name="tax_rate_percent_range"),
        ]

    def __str__(self) -> str:
        return self.name
