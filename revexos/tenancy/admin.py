from django.contrib import admin
from django.db import connection

from revexos.tenancy.models import Domain, Tenant


class PublicOnlyAdmin(admin.ModelAdmin):
    """Tenants and domains are platform data: visible only in the public schema's admin."""

    def has_module_permission(self, request):
        return connection.schema_name == "public" and super().has_module_permission(request)

    def has_view_permission(self, request, obj=None):
        return connection.schema_name == "public" and super().has_view_permission(request, obj)


class DomainInline(admin.TabularInline):
    model = Domain
    extra = 0


@admin.register(Tenant)
class TenantAdmin(PublicOnlyAdmin):
    list_display = ["slug", "name", "schema_name", "created_at"]
    search_fields = ["slug", "name"]
    inlines = [DomainInline]
    readonly_fields = ["schema_name"]


@admin.register(Domain)
class DomainAdmin(PublicOnlyAdmin):
    list_display = ["domain", "tenant", "is_primary"]
