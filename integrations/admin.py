"""Django admin for connections and their inbox (support staff; the app's own pages are in views.py)."""

from django.contrib import admin

from integrations.models import Connection, CrmDeal, InboxEvent, Mapping, TimeImport


class MappingInline(admin.TabularInline):
    model = Mapping
    extra = 0
    raw_id_fields = ["contract"]


@admin.register(Connection)
class ConnectionAdmin(admin.ModelAdmin):
    list_display = ["source", "name", "is_active", "last_event_at", "last_pull_at"]
    exclude = ["secret", "previous_secret", "api_token"]  # secrets never show in full after creation
    readonly_fields = ["previous_secret_expires_at", "secret_rotated_at", "last_event_at", "last_pull_at"]
    inlines = [MappingInline]


@admin.register(InboxEvent)
class InboxEventAdmin(admin.ModelAdmin):
    list_display = ["received_at", "source", "event_type", "subject", "verdict", "status"]
    list_filter = ["source", "status", "verdict"]
    search_fields = ["event_id", "subject"]
    readonly_fields = [f.name for f in InboxEvent._meta.fields]


@admin.register(CrmDeal)
class CrmDealAdmin(admin.ModelAdmin):
    list_display = ["deal_id", "name", "connection", "contract", "updated_at"]
    raw_id_fields = ["contract"]


@admin.register(TimeImport)
class TimeImportAdmin(admin.ModelAdmin):
    list_display = ["created_at", "format", "filename", "rows", "created", "duplicates", "hours"]
