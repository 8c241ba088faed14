"""``tenant_template``: bring the template new tenants are cloned from up to the latest migration.

Run after ``migrate_schemas`` on deploy, so the first sign-up does not wait for it; a sign-up finding
the template stale migrates it itself. Then makes the spare clones sign-ups rename (``--spares 0``
to make none).
"""

from __future__ import annotations

from django.core.management.base import BaseCommand

from revexos.tenancy.services.template import (
    SPARES_KEPT,
    TEMPLATE_SCHEMA,
    tenant_spares_replenish,
    tenant_template_refresh,
)


class Command(BaseCommand):
    help = "Create or migrate the tenant template schema (new tenants are clones of it)."

    def add_arguments(self, parser):
        parser.add_argument("--spares", type=int, default=SPARES_KEPT, help="spare clones to keep ready")

    def handle(self, *args, verbosity=1, spares=SPARES_KEPT, **options):
        migrated = tenant_template_refresh(verbosity=max(0, verbosity - 1))
        self.stdout.write(f"{TEMPLATE_SCHEMA}: {'migrated' if migrated else 'already current'}")
        if spares:
            made = tenant_spares_replenish(keep=spares)
            self.stdout.write(f"spare clones: {made} made, {spares} kept")
