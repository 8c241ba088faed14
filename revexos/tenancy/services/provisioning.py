"""Creating a tenant: schema, domain, first admin and optionally an API key, all or nothing."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import connection, transaction
from django_tenants.utils import schema_context, schema_exists

from revexos.tenancy.models import Domain, Tenant
from revexos.tenancy.slugs import schema_name_for, slug_problems


@dataclass(frozen=True)
class ProvisionedTenant:
    tenant: Tenant
    domain: str
    admin_email: str
    api_key: str | None


def tenant_domain_for(slug: str) -> str:
    return f"{slug}.{settings.TENANT_BASE_DOMAIN}"


def tenant_provision_validate(*, slug: str, domain: str, admin_email: str, admin_password: str) -> dict[str, list[str]]:
    """Every problem with the request, by field; empty when it can be provisioned."""
    errors: dict[str, list[str]] = {}
    problems = slug_problems(slug)
    if not problems and (Tenant.objects.filter(slug=slug).exists() or schema_exists(schema_name_for(slug))):
        problems.append(f"“{slug}” is already taken.")
    if problems:
        errors["slug"] = problems
    if Domain.objects.filter(domain=domain).exists():
        errors["domain"] = [f"The host {domain} already belongs to a tenant."]
    try:
        validate_email(admin_email)
    except ValidationError:
        errors["admin_email"] = ["Enter a valid e-mail address."]
    try:
        from revexos.accounts.models import User

        validate_password(admin_password, user=User(email=admin_email))
    except ValidationError as exc:
        errors["admin_password"] = list(exc.messages)
    return errors


def tenant_provision(
    *,
    slug: str,
    name: str,
    admin_email: str,
    admin_password: str,
    domain: str | None = None,
    admin_name: str = "",
    with_api_key: bool = False,
    extra_users: list[tuple] | None = None,
) -> ProvisionedTenant:
    """Create the tenant's schema, its domain and its first admin in one transaction.

    PostgreSQL DDL is transactional, so a failure anywhere (a migration, a duplicate domain,
    the admin user) rolls back the schema as well: there is never a half-made tenant.
    ``extra_users`` are ``(email, password, role[, full_name])`` tuples (the demo tenant, tests).
    """
    from revexos.accounts.models import Role
    from revexos.accounts.services import api_key_create, user_create

    connection.set_schema_to_public()  # tenants are platform data, created from the public schema
    domain = (domain or tenant_domain_for(slug)).lower()
    errors = tenant_provision_validate(slug=slug, domain=domain, admin_email=admin_email, admin_password=admin_password)
    if errors:
        raise ValidationError(errors)

    with transaction.atomic():
        tenant = Tenant(schema_name=schema_name_for(slug), slug=slug, name=name or slug)
        tenant.save(verbosity=0)
        Domain.objects.create(domain=domain, tenant=tenant, is_primary=True)
        with schema_context(tenant.schema_name):
            admin = user_create(email=admin_email, password=admin_password, role=Role.ADMIN, full_name=admin_name)
            for email, password, role, *name in extra_users or []:
                user_create(email=email, password=password, role=role, full_name=name[0] if name else "")
            key = api_key_create(name="Provisioning key", created_by=admin).secret if with_api_key else None
    connection.set_schema_to_public()
    return ProvisionedTenant(tenant=tenant, domain=domain, admin_email=admin_email, api_key=key)
