"""Create the ``demo`` tenant with one user per role (idempotent: an existing demo is kept)."""
from __future__ import annotations

from django.core.management.base import BaseCommand

from revexos.accounts.models import Role
from revexos.tenancy.models import Tenant
from revexos.tenancy.services.provisioning import tenant_provision

DEMO_PASSWORD = "revexos-demo"
DEMO_USERS = [
    ("admin@demo.example", Role.ADMIN),
    ("finance@demo.example", Role.FINANCE),
    ("am@demo.example", Role.ACCOUNT_MANAGER),
    ("viewer@demo.example", Role.VIEWER),
]


class Command(BaseCommand):
    help = "Provision the demo tenant (demo.localhost) with one user per role, unless it exists."

    def handle(self, *args, **options):
        if Tenant.objects.filter(slug="demo").exists():
            self.stdout.write("Demo tenant exists; keeping its data.")
            return
        tenant_provision(
            slug="demo", name="Northwind Consulting (demo)",
            admin_email=DEMO_USERS[0][0], admin_password=DEMO_PASSWORD,
            extra_users=[(email, DEMO_PASSWORD, role) for email, role in DEMO_USERS[1:]],
        )
        self.stdout.write("Demo tenant created.")
