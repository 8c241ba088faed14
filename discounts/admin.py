"""Admin views of exceptions: read-only, because granting, revoking and extending go through the
services (validation, approval, the event log and draft recomputation). History is one click away."""

from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from discounts.models import Credit, CreditApplication, Discount, DiscountApplication, ExceptionEvent, PriceOverride


class _ReadOnly:
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class EventInline(_ReadOnly, admin.TabularInline):
    model = ExceptionEvent
    extra = 0
    fields = ["at", "action", "from_status", "to_status", "effective_on", "actor", "actor_label", "reason"]
    readonly_fields = fields


class DiscountEventInline(EventInline):
    fk_name = "discount"


class CreditEventInline(EventInline):
    fk_name = "credit"


class OverrideEventInline(EventInline):
    fk_name = "price_override"


@admin.register(Discount)
class DiscountAdmin(_ReadOnly, SimpleHistoryAdmin):
    list_display = [
        "__str__",
        "customer",
        "contract",
        "scope",
        "kind",
        "value",
        "start_date",
        "end_date",
        "max_cycles",
        "status",
    ]
    list_filter = ["status", "kind", "scope"]
    search_fields = ["customer__legal_name", "contract__number", "reason"]
    list_select_related = ["customer", "contract"]
    inlines = [DiscountEventInline]


@admin.register(Credit)
class CreditAdmin(_ReadOnly, SimpleHistoryAdmin):
    list_display = ["__str__", "customer", "amount", "balance", "currency", "expires_on", "status"]
    list_filter = ["status", "currency"]
    search_fields = ["customer__legal_name", "reason"]
    list_select_related = ["customer"]
    inlines = [CreditEventInline]


@admin.register(PriceOverride)
class PriceOverrideAdmin(_ReadOnly, SimpleHistoryAdmin):
    list_display = ["__str__", "contract", "line_ref", "role", "rate", "currency", "start_date", "end_date", "status"]
    list_filter = ["status"]
    search_fields = ["contract__number", "reason"]
    list_select_related = ["contract"]
    inlines = [OverrideEventInline]


@admin.register(DiscountApplication)
class DiscountApplicationAdmin(_ReadOnly, admin.ModelAdmin):
    list_display = ["discount", "invoice", "invoice_line", "amount", "cycle_key", "coverage", "stage"]
    list_select_related = ["discount", "invoice", "invoice_line"]


@admin.register(CreditApplication)
class CreditApplicationAdmin(_ReadOnly, admin.ModelAdmin):
    list_display = ["credit", "invoice", "amount", "applied_on"]
    list_select_related = ["credit", "invoice"]
