"""Connections to the tools on either side of RevExOS, and the inbox of what they send (DESIGN.md §2, §5.1).

Keys that make inbound traffic idempotent (the one place that says what "handled once" means):

- ``InboxEvent``: ``(connection, event_id)`` for requests whose signature verified — the source's own
  delivery or event id (Jira ``X-Atlassian-Webhook-Identifier``, HubSpot ``eventId``, Linear
  ``webhookId``, Asana ``X-Hook-Signature`` of the body, Salesforce ``Notification/Id``). A
  redelivery finds the row and is acknowledged without a second row. Refused requests are kept for
  the admin to see, but never take a verified event's id.
- Delivery facts derived from an event go through ``billing.services.ingestion.delivery_event_ingest``,
  unique by ``(source, external_id)``; the milestone invoice is unique by its billing key there.
- ``CrmDeal``: ``(connection, deal_id)``: a won deal makes one draft contract, however often won.
- Time entries imported from a tracker: ``billing.TimeEntry.external_id`` = ``<source>:<row id>`` where
  the export has an id, else ``<source>:fp:<fingerprint of the row>:<occurrence>``.
"""

from __future__ import annotations

from django.conf import settings as django_settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Now


class Source(models.TextChoices):
    JIRA = "jira", "Jira"
    LINEAR = "linear", "Linear"
    ASANA = "asana", "Asana"
    HUBSPOT = "hubspot", "HubSpot"
    SALESFORCE = "salesforce", "Salesforce"
    HARVEST = "harvest", "Harvest"
    TOGGL = "toggl", "Toggl Track"


PROJECT_TOOLS = (Source.JIRA, Source.LINEAR, Source.ASANA)
CRMS = (Source.HUBSPOT, Source.SALESFORCE)
TIME_TRACKERS = (Source.HARVEST, Source.TOGGL)
# Sources that push signed webhooks to /webhooks/<source>/ (time trackers are imported or pulled).
WEBHOOK_SOURCES = (*PROJECT_TOOLS, *CRMS)


class Connection(models.Model):
    """One tenant's link to one source: its settings, webhook secret and credentials.

    ``secret`` signs the source's webhooks (generated here, or pasted where the source issues it,
    e.g. HubSpot's app secret). Rotating keeps the old one in ``previous_secret`` until
    ``previous_secret_expires_at`` so deliveries signed before the source was updated still pass.
    """

    source = models.CharField(max_length=20, choices=Source.choices, unique=True)
    name = models.CharField(max_length=200, blank=True)
    is_active = models.BooleanField(default=True)
    settings = models.JSONField(
        default=dict,
        blank=True,
        help_text="Source settings: api_base, organization_id, pipeline, won_stage, account_id, column mapping …",
    )
    secret = models.CharField(max_length=300, blank=True)
    previous_secret = models.CharField(max_length=300, blank=True)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    secret_rotated_at = models.DateTimeField(null=True, blank=True)
    api_token = models.CharField(
        "API token", max_length=500, blank=True, help_text="Credential for calls to the source's API."
    )
    last_event_at = models.DateTimeField(null=True, blank=True)
    last_pull_at = models.DateTimeField(null=True, blank=True)
    last_pull_error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        django_settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["source"]

    def __str__(self) -> str:
        return self.name or self.get_source_display()


class MappingKind(models.TextChoices):
    PROJECT = "project", "Project → contract"
    TASK = "task", "Task → rate-card role"
    PERSON = "person", "Person → name on invoices"


class Mapping(models.Model):
    """How a connection's names translate to ours: a project (Jira project key, Linear team, Asana
    project, Harvest project code / client, Toggl project) → a contract; a task → a rate-card role;
    a person → the name used on time entries."""

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="mappings")
    kind = models.CharField(max_length=10, choices=MappingKind.choices)
    external = models.CharField(max_length=200, help_text="The name or key in the source.")
    contract = models.ForeignKey(
        "contracts.Contract", null=True, blank=True, on_delete=models.CASCADE, related_name="integration_mappings"
    )
    value = models.CharField(max_length=200, blank=True, help_text="Role or person name (task and person mappings).")

    class Meta:
        ordering = ["connection", "kind", "external"]
        constraints = [
            models.UniqueConstraint(fields=["connection", "kind", "external"], name="integration_mapping_unique"),
            models.CheckConstraint(
                condition=~Q(kind="project") | Q(contract__isnull=False), name="integration_project_mapping_contract"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.external} → {self.contract or self.value}"


class Verdict(models.TextChoices):
    VALID = "valid", "Signature valid"
    INVALID = "invalid", "Signature invalid"
    STALE = "stale", "Timestamp too old"
    MISSING = "missing", "Signature missing"
    HANDSHAKE = "handshake", "Handshake"


class InboxStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    PROCESSED = "processed", "Processed"
    IGNORED = "ignored", "Ignored"
    UNMATCHED = "unmatched", "Unmatched"
    FAILED = "failed", "Failed"
    REJECTED = "rejected", "Rejected"


class InboxEvent(models.Model):
    """Every request a source sent us: stored as received, then processed by a worker.

    ``pending`` rows are the worker's (and the cycle's sweep's) to do; ``failed`` rows are retried by
    the sweep up to ``MAX_ATTEMPTS`` and may be replayed by an admin; ``rejected`` rows (bad
    signature) are kept only so an admin can see why a source's deliveries are refused.
    """

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="events")
    source = models.CharField(max_length=20, choices=Source.choices)
    event_id = models.CharField(max_length=200)
    event_type = models.CharField(max_length=100, blank=True)
    subject = models.CharField(max_length=200, blank=True, help_text="What the event is about, e.g. PROJ-12.")
    body = models.BinaryField()
    headers = models.JSONField(default=dict, blank=True)
    verdict = models.CharField(max_length=10, choices=Verdict.choices)
    status = models.CharField(max_length=10, choices=InboxStatus.choices, default=InboxStatus.PENDING)
    outcome = models.TextField(blank=True, help_text="What processing did, in words.")
    error = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    received_at = models.DateTimeField(db_default=Now())
    processed_at = models.DateTimeField(null=True, blank=True)
    contract = models.ForeignKey(
        "contracts.Contract", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "event_id"],
                condition=Q(verdict__in=["valid", "handshake"]),
                name="inbox_event_once_per_connection",
            ),
        ]
        indexes = [
            models.Index(fields=["connection", "-received_at"], name="inbox_connection_recent"),
            # The sweep's question: what is still to do? That set stays small.
            models.Index(fields=["received_at"], condition=Q(status__in=["pending", "failed"]), name="inbox_todo"),
        ]

    def __str__(self) -> str:
        return f"{self.source}:{self.event_id} ({self.status})"


class CrmDeal(models.Model):
    """A won CRM deal and the draft contract made from it (one per deal and connection).

    ``terms`` is the deal as last mapped (customer, dates, lines): a later change is compared with
    it, and once the contract is signed the difference goes to a person, never into the contract.
    """

    connection = models.ForeignKey(Connection, on_delete=models.PROTECT, related_name="deals")
    deal_id = models.CharField(max_length=100)
    name = models.CharField(max_length=300, blank=True)
    contract = models.ForeignKey("contracts.Contract", on_delete=models.PROTECT, related_name="crm_deals")
    terms = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["connection", "deal_id"], name="crm_deal_once")]

    def __str__(self) -> str:
        return f"{self.connection.source} deal {self.deal_id}"


class TimeImportFormat(models.TextChoices):
    HARVEST = "harvest", "Harvest detailed time report (CSV)"
    TOGGL = "toggl", "Toggl Track detailed report (CSV)"
    HARVEST_API = "harvest_api", "Harvest v2 API pull"


class TimeImport(models.Model):
    """One committed import of hours from a time tracker (file or scheduled pull), for the history."""

    connection = models.ForeignKey(Connection, null=True, blank=True, on_delete=models.SET_NULL, related_name="imports")
    format = models.CharField(max_length=12, choices=TimeImportFormat.choices)
    filename = models.CharField(max_length=255, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    rows = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0, help_text="New time entries stored.")
    duplicates = models.PositiveIntegerField(default=0, help_text="Rows already imported before.")
    hours = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    billable_hours = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    contracts = models.JSONField(default=list, blank=True, help_text="Numbers of the contracts the hours went to.")
    created_by = models.ForeignKey(
        django_settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_format_display()} {self.created_at:%Y-%m-%d %H:%M}"


# ----------------------------------------------------------------------------- accounting exports (outbound)


class ExportTarget(models.TextChoices):
    XERO = "xero", "Xero sales invoices (CSV)"
    QUICKBOOKS = "quickbooks", "QuickBooks Online invoices (CSV)"
    JOURNAL = "journal", "Double-entry journal (CSV)"


def export_file_path(instance, filename: str) -> str:
    # The tenant storage prefixes this with the tenant's schema name.
    return f"exports/{instance.target}/{filename}"


class AccountingExport(models.Model):
    """One export of a date range (who, when, range, file), kept so it can be downloaded again.

    The file is a pure function of the documents in the range (integrations/exports.py): the same
    range exported twice gives the same bytes, ``sha256`` says so at a glance."""

    target = models.CharField(max_length=12, choices=ExportTarget.choices)
    date_from = models.DateField()
    date_to = models.DateField()
    file = models.FileField(upload_to=export_file_path, max_length=300)
    filename = models.CharField(max_length=200)
    content_type = models.CharField(max_length=60)
    size = models.PositiveIntegerField(default=0)
    sha256 = models.CharField(max_length=64)
    invoices = models.PositiveIntegerField(default=0)
    credit_notes = models.PositiveIntegerField(default=0)
    payments = models.PositiveIntegerField(default=0)
    files = models.PositiveSmallIntegerField(default=1, help_text="CSV files in it (a zip holds several).")
    created_by = models.ForeignKey(
        django_settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_via = models.CharField(max_length=20, default="ui", help_text="ui or api")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(date_to__gte=models.F("date_from")), name="export_range_ordered")
        ]

    def __str__(self) -> str:
        return f"{self.get_target_display()} {self.date_from}–{self.date_to}"


class AccountingSettings(models.Model):
    """Account codes the exports post to (one row per tenant). Defaults follow Xero's UK chart:
    200 Sales, 610 Accounts Receivable, 820 VAT, 090 Business Bank Account."""

    receivable_account = models.CharField(max_length=30, default="610")
    tax_account = models.CharField(max_length=30, default="820")
    bank_account = models.CharField(max_length=30, default="090")
    revenue_account = models.CharField(max_length=30, default="200", help_text="Revenue of every kind without its own.")
    revenue_accounts = models.JSONField(
        default=dict, blank=True, help_text='Revenue account per invoice line kind, e.g. {"usage": "210"}.'
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "accounting settings"

    def __str__(self) -> str:
        return "Accounting export settings"
