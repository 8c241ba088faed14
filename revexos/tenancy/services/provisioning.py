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
from revexos.tenancy.services.template import tenant_template_refresh
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

    The schema is cloned from the migrated template (``services/template.py``, well under the 2 s
    a sign-up may take). PostgreSQL DDL is transactional, so a failure anywhere (the clone, a duplicate domain,
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

    tenant_template_refresh()  # committed on its own: a failed sign-up never undoes the template's migration
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


# --------------------------------------------------------------------------- audit sandboxes

SANDBOX_PREFIX = "sbx-"  # reserved: no sign-up slug may start with it (slugs.py)


def tenant_sandbox_create(*, owner: Tenant, label: str, purge_after) -> Tenant:
    """A schema-only tenant for one audit: no domain (no request can reach it), no users, billing
    review-first, owned by ``owner`` and dropped after ``purge_after`` (``tenant_sandboxes_purge``)."""
    import uuid

    slug = f"{SANDBOX_PREFIX}{uuid.uuid4().hex[:16]}"
    tenant = Tenant(
        schema_name=schema_name_for(slug),
        slug=slug,
        name=label[:200] or slug,
        time_zone=owner.time_zone,
        auto_issue_invoices=False,
        renewal_window_days=owner.renewal_window_days,
        sandbox_of=owner,
        purge_after=purge_after,
    )
    with schema_context("public"):
        tenant_template_refresh()
        tenant.save(verbosity=0)  # the schema is a clone of the template (Tenant.create_schema)
    return tenant


def tenant_sandbox_drop(*, schema_name: str) -> bool:
    """Drop a sandbox's schema and row; False when it was already gone. Never touches a live tenant."""
    with schema_context("public"):
        tenant = Tenant.objects.filter(schema_name=schema_name, sandbox_of__isnull=False).first()
        if tenant is None:
            return False
        with transaction.atomic():
            tenant.delete(force_drop=True)
        return True


def tenant_sandboxes_purge(*, now, owner: Tenant | None = None) -> list[str]:
    """Drop every sandbox (of ``owner``, when given) whose retention has passed: the safety net
    behind each audit's own purge, for a sandbox no audit names any more (a worker killed between
    creating it and recording it, an audit row deleted)."""
    with schema_context("public"):
        due = Tenant.objects.filter(sandbox_of__isnull=False, purge_after__lte=now)
        if owner is not None:
            due = due.filter(sandbox_of=owner)
        due = list(due.values_list("schema_name", flat=True))
    return [schema for schema in due if tenant_sandbox_drop(schema_name=schema)]
