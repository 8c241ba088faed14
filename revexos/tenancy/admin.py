"""Tenants and domains are platform data: they exist only on the public host's admin site."""

from django.contrib import admin

from revexos.tenancy.models import Domain, Tenant


class PlatformAdminSite(admin.AdminSite):
    site_header = "RevExOS platform"
    site_title = "RevExOS platform"


platform_admin = PlatformAdminSite(name="platform_admin")


class DomainInline(admin.TabularInline):
    model = Domain
    extra = 0


@admin.register(Tenant, site=platform_admin)
class TenantAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "schema_name", "created_at"]
    search_fields = ["slug", "name"]
    inlines = [DomainInline]
    readonly_fields = ["schema_name"]


@admin.register(Domain, site=platform_admin)
class DomainAdmin(admin.ModelAdmin):
    list_display = ["domain", "tenant", "is_primary"]
