"""Point the development Stripe server's webhooks at every tenant with a connected Stripe account.

localstripe keeps its configuration in memory, so ``make run`` calls this each time it starts one.
"""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django_tenants.utils import get_tenant_model, schema_context


class Command(BaseCommand):
    help = "Register /webhooks/stripe/ of each tenant with the local Stripe server (STRIPE_API_BASE)."

    def handle(self, *args, **options):
        from receivables.localstripe_server import webhook_register
        from receivables.models import StripeAccount
        from receivables.services.paylinks import tenant_base_url

        if not settings.STRIPE_API_BASE:
            raise CommandError("STRIPE_API_BASE is not set: there is no local Stripe server to configure.")
        count = 0
        for tenant in get_tenant_model().objects.exclude(schema_name="public"):
            with schema_context(tenant.schema_name):
                account = StripeAccount.objects.first()
                if account is None:
                    continue
                url = f"{tenant_base_url()}/webhooks/stripe/"
                webhook_register(
                    settings.STRIPE_API_BASE, name=tenant.schema_name, url=url, secret=account.webhook_secret
                )
                count += 1
                self.stdout.write(f"Stripe webhooks of {tenant.slug} → {url}")
        self.stdout.write(f"{count} tenant(s) connected to the local Stripe server.")
