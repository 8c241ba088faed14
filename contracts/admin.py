"""Django admin for every contracts model: the second door for tenant admins.

Versions that have taken effect (and their lines, tiers and rates) are read-only here as in the
services: terms in force are history. Change them by amending the contract in the app.
"""

from __future__ import annotations

from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from contracts.models import (
    Contract,
    ContractVersion,
    Customer,
    IssuingEntity,
    Milestone,
    PriceLine,
    PriceTier,
    RateCardEntry,
)


def _locked_version(version: ContractVersion | None) -> bool:
    if version is None:
        return False
    return version.contract.status != "draft" and version.has_taken_effect()


@admin.register(IssuingEntity)
class IssuingEntityAdmin(SimpleHistoryAdmin):
    list_display = ["legal_name", "invoice_prefix", "currency", "tax_id", "is_active"]
    list_filter = ["is_active", "currency"]
    search_fields = ["legal_name", "invoice_prefix", "tax_id"]


@admin.register(Customer)
class CustomerAdmin(SimpleHistoryAdmin):
    list_display = ["legal_name", "external_id", "currency", "owner", "is_active"]
    list_filter = ["is_active", "currency"]
    search_fields = ["legal_name", "external_id", "tax_id", "crm_id", "accounting_id", "stripe_customer_id"]
    list_select_related = ["owner"]


class ContractVersionInline(admin.TabularInline):
    model = ContractVersion
    fields = [
        "version",
        "effective_from",
        "currency",
        "payment_terms_days",
        "po_number",
        "po_required",
        "billing_anchor",
        "reason",
    ]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


class MilestoneInline(admin.TabularInline):
    model = Milestone
    fields = ["line_ref", "name", "reference", "expected_date", "status", "delivered_at", "delivered_source"]
    extra = 0


@admin.register(Contract)
class ContractAdmin(SimpleHistoryAdmin):
    list_display = ["number", "title", "customer", "issuing_entity", "status", "start_date", "end_date", "auto_renew"]
    list_filter = ["status", "auto_renew", "issuing_entity"]
    search_fields = ["number", "title", "customer__legal_name", "customer__external_id"]
    list_select_related = ["customer", "issuing_entity"]
    date_hierarchy = "start_date"
    inlines = [ContractVersionInline, MilestoneInline]


class PriceLineInline(admin.StackedInline):
    model = PriceLine
    extra = 0
    show_change_link = True

    def has_change_permission(self, request, obj=None):
        return not _locked_version(obj) and super().has_change_permission(request, obj)

    def has_add_permission(self, request, obj=None):
        return not _locked_version(obj) and super().has_add_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return not _locked_version(obj) and super().has_delete_permission(request, obj)


@admin.register(ContractVersion)
class ContractVersionAdmin(SimpleHistoryAdmin):
    list_display = ["contract", "version", "effective_from", "currency", "payment_terms_days", "po_required"]
    list_filter = ["currency", "billing_anchor"]
    search_fields = ["contract__number", "po_number", "reason"]
    list_select_related = ["contract"]
    inlines = [PriceLineInline]

    def has_change_permission(self, request, obj=None):
        return not _locked_version(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return not _locked_version(obj) and super().has_delete_permission(request, obj)


class PriceTierInline(admin.TabularInline):
    model = PriceTier
    extra = 0

    def has_change_permission(self, request, obj=None):
        return not _locked_version(getattr(obj, "version", None)) and super().has_change_permission(request, obj)

    has_add_permission = has_delete_permission = has_change_permission


class RateCardEntryInline(admin.TabularInline):
    model = RateCardEntry
    extra = 0

    def has_change_permission(self, request, obj=None):
        return not _locked_version(getattr(obj, "version", None)) and super().has_change_permission(request, obj)

    has_add_permission = has_delete_permission = has_change_permission


@admin.register(PriceLine)
class PriceLineAdmin(SimpleHistoryAdmin):
    list_display = ["description", "line_ref", "kind", "charge_model", "amount", "version"]
    list_filter = ["kind", "charge_model", "frequency"]
    search_fields = ["description", "line_ref", "metric", "reference", "version__contract__number"]
    list_select_related = ["version__contract"]
    inlines = [PriceTierInline, RateCardEntryInline]

    def has_change_permission(self, request, obj=None):
        return not _locked_version(getattr(obj, "version", None)) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return not _locked_version(getattr(obj, "version", None)) and super().has_delete_permission(request, obj)


@admin.register(PriceTier)
class PriceTierAdmin(SimpleHistoryAdmin):
    list_display = ["price_line", "position", "up_to", "unit_amount", "rate", "flat_amount"]
    list_select_related = ["price_line"]

    def has_change_permission(self, request, obj=None):
        return not _locked_version(
            getattr(getattr(obj, "price_line", None), "version", None)
        ) and super().has_change_permission(request, obj)

    has_delete_permission = has_change_permission


@admin.register(RateCardEntry)
class RateCardEntryAdmin(SimpleHistoryAdmin):
    list_display = ["price_line", "role", "hourly_rate"]
    list_select_related = ["price_line"]

    def has_change_permission(self, request, obj=None):
        return not _locked_version(
            getattr(getattr(obj, "price_line", None), "version", None)
        ) and super().has_change_permission(request, obj)

    has_delete_permission = has_change_permission


@admin.register(Milestone)
class MilestoneAdmin(SimpleHistoryAdmin):
    list_display = ["name", "contract", "reference", "expected_date", "status", "delivered_at"]
    list_filter = ["status"]
    search_fields = ["name", "reference", "contract__number"]
    list_select_related = ["contract"]
