"""Tenants (one PostgreSQL schema each) and the host names that route to them."""

from django.core.validators import RegexValidator
from django.db import models
from django_tenants.models import DomainMixin, TenantMixin

DEFAULT_ACCENT = "#2f5bd3"


def branding_logo_path(instance, filename: str) -> str:
    # The tenant file storage prefixes this with the tenant's schema name.
    extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else "png"
    return f"branding/logo.{extension}"


class Tenant(TenantMixin):
    """A customer company of RevExOS. ``schema_name`` is derived from the slug."""

    slug = models.SlugField(max_length=32, unique=True)
    name = models.CharField(max_length=200)
    time_zone = models.CharField(max_length=64, default="UTC")
    # New tenants auto-issue invoices that pass the pre-send checks (DESIGN.md §4).
    auto_issue_invoices = models.BooleanField(default=True)
    renewal_window_days = models.PositiveSmallIntegerField(default=60)
    created_at = models.DateTimeField(auto_now_add=True)
    # Invoice branding (Settings → Workspace): printed on every invoice PDF and e-mail.
    invoice_logo = models.ImageField(
        upload_to=branding_logo_path,
        blank=True,
        help_text="PNG or JPEG, shown at the top left of invoices (at most 2 MB; a wide logo prints best).",
    )
    invoice_accent_color = models.CharField(
        "accent colour",
        max_length=7,
        default=DEFAULT_ACCENT,
        validators=[RegexValidator(r"^#[0-9a-fA-F]{6}$", "Use a hex colour such as #2f5bd3.")],
        help_text="The colour of the invoice's rule, title and amount-due band.",
    )
    # An audit sandbox: a schema holding a prospect's imported exports, owned by a live tenant, with no
    # domain and no users. Beat never fans out to it; it is dropped once ``purge_after`` has passed.
    sandbox_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="sandboxes")
    purge_after = models.DateTimeField(null=True, blank=True)

    auto_create_schema = True

    def create_schema(self, check_if_exists=False, sync_schema=True, verbosity=1):
        """A new tenant's schema is a clone of the migrated template (seconds, not a full migrate),
        made ahead of time when a spare one is left (``services/template.py``)."""
        from django_tenants.utils import schema_exists

        from revexos.tenancy.services.template import tenant_schema_create

        if self.schema_name == "public" or not sync_schema:
            return super().create_schema(check_if_exists, sync_schema, verbosity)
        if check_if_exists and schema_exists(self.schema_name):
            return False
        tenant_schema_create(self.schema_name)
        return True

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return f"{self.name} ({self.slug})"

    @property
    def is_sandbox(self) -> bool:
        return self.sandbox_of_id is not None


class Domain(DomainMixin):
    class Meta:
        ordering = ["domain"]
