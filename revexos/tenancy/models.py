"""Tenants (one PostgreSQL schema each) and the host names that route to them."""

from django.db import models
from django_tenants.models import DomainMixin, TenantMixin


class Tenant(TenantMixin):
    """A customer company of RevExOS. ``schema_name`` is derived from the slug."""

    slug = models.SlugField(max_length=32, unique=True)
    name = models.CharField(max_length=200)
    time_zone = models.CharField(max_length=64, default="UTC")
    # New tenants auto-issue invoices that pass the pre-send checks (DESIGN.md §4).
    auto_issue_invoices = models.BooleanField(default=True)
    renewal_window_days = models.PositiveSmallIntegerField(default=60)
    created_at = models.DateTimeField(auto_now_add=True)

    auto_create_schema = True

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return f"{self.name} ({self.slug})"


class Domain(DomainMixin):
    class Meta:
        ordering = ["domain"]
