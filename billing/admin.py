from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from billing.models import (
    BillingReviewTask,
    BillingRun,
    CreditNote,
    DeliveryEvent,
    Invoice,
    InvoiceLine,
    TimeEntry,
    UsageEvent,
)


class InvoiceLineInline(admin.TabularInline):
    model = InvoiceLine
    extra = 0
    fields = [
        "position",
        "kind",
        "description",
        "quantity",
        "unit_amount",
        "amount",
        "period_start",
        "period_end",
        "billing_key",
    ]

    # Lines of an issued invoice are immutable (the database refuses it too).
    def has_change_permission(self, request, obj=None):
        return obj is None or obj.status == "draft"

    def has_add_permission(self, request, obj=None):
        return obj is None or obj.status == "draft"

    def has_delete_permission(self, request, obj=None):
        return obj is None or obj.status == "draft"


@admin.register(Invoice)
class InvoiceAdmin(SimpleHistoryAdmin):
    list_display = ["__str__", "contract", "customer", "status", "currency", "total", "issue_date", "due_date"]
    list_filter = ["status", "currency"]
    search_fields = ["number", "contract__number", "customer__legal_name"]
    list_select_related = ["contract", "customer"]
    inlines = [InvoiceLineInline]
    readonly_fields = [
        "number",
        "issue_date",
        "due_date",
        "issued_at",
        "subtotal",
        "total",
        "amount_due",
        "credited_total",
    ]

    def has_delete_permission(self, request, obj=None):
        # Issued invoices are refused by the database anyway; say so up front.
        return obj is None or obj.status == "draft"


@admin.register(CreditNote)
class CreditNoteAdmin(admin.ModelAdmin):
    list_display = ["number", "invoice", "amount", "currency", "issue_date"]
    readonly_fields = ["number"]


@admin.register(BillingReviewTask)
class BillingReviewTaskAdmin(admin.ModelAdmin):
    list_display = ["title", "kind", "status", "contract", "assignee", "created_at"]
    list_filter = ["status", "kind"]
    search_fields = ["title", "detail"]


@admin.register(UsageEvent)
class UsageEventAdmin(admin.ModelAdmin):
    list_display = ["transaction_id", "contract", "metric", "quantity", "timestamp", "invoice_line"]
    list_filter = ["metric"]
    search_fields = ["transaction_id"]
    raw_id_fields = ["contract", "invoice_line"]


@admin.register(TimeEntry)
class TimeEntryAdmin(admin.ModelAdmin):
    list_display = [
        "external_id",
        "contract",
        "person",
        "role",
        "work_date",
        "hours",
        "billable",
        "line_ref",
        "invoice_line",
    ]
    raw_id_fields = ["contract", "invoice_line"]


@admin.register(DeliveryEvent)
class DeliveryEventAdmin(admin.ModelAdmin):
    list_display = ["source", "external_id", "kind", "contract", "received_at", "processed_at", "attempts"]
    list_filter = ["kind", "source"]


@admin.register(BillingRun)
class BillingRunAdmin(admin.ModelAdmin):
    list_display = ["id", "as_of", "trigger", "status", "created_at", "finished_at"]
