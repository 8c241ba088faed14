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
        result = tenant_provision(
            slug=DEMO_SLUG,
            name="Northwind Consulting (demo)",
            admin_email=DEMO_USERS[0][0],
            admin_password=DEMO_PASSWORD,
            admin_name=DEMO_USERS[0][3],
            extra_users=[(email, DEMO_PASSWORD, role, name) for email, role, _, name in DEMO_USERS[1:]],
        )
        self.stdout.write("Demo tenant created.")
        from django_tenants.utils import schema_context

        with schema_context(result.tenant.schema_name):
            seeded = demo_workspace_seed()
        self.stdout.write(
            f"Demo contracts: {seeded['contracts']['contracts']} contracts for {seeded['contracts']['customers']} customers, {seeded['contracts']['amendments']} amended."
        )
        self.stdout.write(f"Demo exceptions: {seeded['exceptions']}")
        self.stdout.write(f"Demo leaks planted: {seeded['leaks']}")
        self.stdout.write(f"Demo integrations: {seeded['integrations']}")
        self.stdout.write(f"Demo history and ledger: {seeded['history']}")
        self.stdout.write(f"Demo cut-over: {seeded['cutover']}; revenue audit: {seeded['audit']}")
        self.stdout.write(f"Demo cycle as of today: { {name: _counts(r) for name, r in seeded['cycle'].items()} }")


def demo_workspace_seed() -> dict:
    """Each module's demo data in the current tenant schema, then one cycle as of today.

    The whole-site tests (tests/site.py) seed their workspace with this too, so a module that adds
    its demo data here has its pages crawled on it.
    """
    from audits.services.demo import audits_demo_seed, cutover_demo_seed
    from billing.cycle import cycle_run
    from contracts.services.demo import contracts_demo_seed
    from discounts.services.demo import discounts_demo_seed
    from insights.services.demo import leakage_demo_seed
    from integrations.services.demo import integrations_demo_seed
    from receivables.services.demo import collections_demo_finish, collections_demo_history
    from revexos.dates import tenant_today

    seeded = {"contracts": contracts_demo_seed(), "exceptions": discounts_demo_seed()}
    # Planted leaks the first cycle's leakage step finds (one of each rule L1–L10).
    seeded["leaks"] = leakage_demo_seed()
    # Jira and HubSpot connections with inbox events, and a Harvest import the cycle bills.
    seeded["integrations"] = integrations_demo_seed()
    # A year billed month by month (real past issue dates), then paid by each customer's
    # habits with the reminders of each day: the ledger behind aging and DSO.
    seeded["history"] = collections_demo_history()
    # A customer moved from Xero this month: its contract imported with billed_through and Xero's
    # invoices as history, so the cycle below bills only the current month.
    seeded["cutover"] = cutover_demo_seed()
    # Run the scheduler's cycle once as of today: past periods are invoiced, renewal alerts
    # raised and discounts activated, so the demo opens on a living workspace.
    seeded["cycle"] = cycle_run(as_of=tenant_today())
    seeded["history"]["unapplied"] = collections_demo_finish()
    # A prospect's revenue audit (the Fabrikam fixture company), ready to read.
    seeded["audit"] = audits_demo_seed()
    return seeded


def _counts(result: dict) -> dict:
    return {key: (len(value) if isinstance(value, (list, tuple, set)) else value) for key, value in result.items()}
