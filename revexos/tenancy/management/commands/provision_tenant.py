"""``provision_tenant SLUG --domain HOST --admin-email E --admin-password P [--api-key]`` (DESIGN.md §7)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from revexos.tenancy.services.provisioning import tenant_provision


class Command(BaseCommand):
    help = "Create a tenant with its schema, domain and admin user. With --api-key, print a new API key alone on the last line."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--domain", help="Host name routed to the tenant (default: <slug>.<TENANT_BASE_DOMAIN>).")
        parser.add_argument("--name", help="Company name (default: the slug).")
        parser.add_argument("--admin-email", required=True)
        parser.add_argument("--admin-password", required=True)
        parser.add_argument(
            "--api-key", action="store_true", help="Also create an API key and print it on the last line."
        )

    def handle(self, *args, slug, domain, name, admin_email, admin_password, api_key, **options):
        try:
            result = tenant_provision(
                slug=slug,
                name=name or slug,
                domain=domain,
                admin_email=admin_email,
                admin_password=admin_password,
                with_api_key=api_key,
            )
        except ValidationError as exc:
            lines = [f"  {field}: {msg}" for field, msgs in exc.message_dict.items() for msg in msgs]
            raise CommandError("Tenant not created:\n" + "\n".join(lines)) from None
        self.stdout.write(
            f"Tenant {result.tenant.slug} created (schema {result.tenant.schema_name}) at http://{result.domain}/"
        )
        self.stdout.write(f"Admin: {result.admin_email}")
        if result.api_key:
            self.stdout.write("API key (shown once):")
            self.stdout.write(result.api_key)
