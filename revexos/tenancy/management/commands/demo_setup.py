"""Create the ``demo`` tenant with one user per role (idempotent: an existing demo is kept)."""
from __future__ import annotations

from django.core.management.base import BaseCommand

from revexos.demo import DEMO_PASSWORD, DEMO_SLUG, DEMO_USERS
from revexos.tenancy.models import Tenant
from revexos.tenancy.services.provisioning import tenant_provision


class Command(BaseCommand):
    help = "Provision the demo tenant (demo.localhost) with one user per role, unless it exists."

    def handle(self, *args, **options):
        if Tenant.objects.filter(slug=DEMO_SLUG).exists():
            self.stdout.write("Demo tenant exists; keeping its data.")
            return
        tenant_provision(
            slug=DEMO_SLUG, name="Northwind Consulting (demo)",
            admin_email=DEMO_USERS[0][0], admin_password=DEMO_PASSWORD, admin_name=DEMO_USERS[0][3],
            extra_users=[(email, DEMO_PASSWORD, role, name) for email, role, _, name in DEMO_USERS[1:]],
        )
        self.stdout.write("Demo tenant created.")
