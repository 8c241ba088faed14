"""``tenant_template``: bring the template new tenants are cloned from up to the latest migration.

Run after ``migrate_schemas`` on deploy, so the first sign-up does not wait for it; a sign-up finding
the template stale migrates it itself.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand

from revexos.tenancy.services.template import TEMPLATE_SCHEMA, tenant_template_refresh


class Command(BaseCommand):
    help = "Create or migrate the tenant template schema (new tenants are clones of it)."

    def handle(self, *args, verbosity=1, **options):
        migrated = tenant_template_refresh(verbosity=max(0, verbosity - 1))
        self.stdout.write(f"{TEMPLATE_SCHEMA}: {'migrated' if migrated else 'already current'}")
