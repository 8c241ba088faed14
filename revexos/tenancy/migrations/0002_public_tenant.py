from django.conf import settings
from django.db import migrations


def create_public_tenant(apps, schema_editor):
    """The public schema is a tenant too: it serves the landing page on the bare domain."""
    Tenant = apps.get_model("tenancy", "Tenant")
    Domain = apps.get_model("tenancy", "Domain")
    public, _ = Tenant.objects.get_or_create(schema_name="public", defaults={"slug": "public", "name": "RevExOS"})
    Domain.objects.get_or_create(domain=settings.TENANT_BASE_DOMAIN, defaults={"tenant": public, "is_primary": True})


class Migration(migrations.Migration):
    dependencies = [("tenancy", "0001_initial")]
    operations = [migrations.RunPython(create_public_tenant, migrations.RunPython.noop)]
