"""Sign-ups rename a spare clone made ahead of time: fresh, of the current template, never shared;
with none left (or only stale ones) they clone as before."""

from __future__ import annotations

import pytest
from django.db import connection
from django_tenants.utils import schema_context, schema_exists

from revexos.tenancy.services import template
from revexos.tenancy.services.provisioning import tenant_provision
from tests.test_tenant_template import _catalog

pytestmark = pytest.mark.django_db


def _sign_up(slug: str):
    return tenant_provision(
        slug=slug, name=slug.title(), admin_email=f"admin@{slug}.test", admin_password="Tidy-Lantern-Orbit-77"
    )


def _fresh_spares(keep: int) -> list[str]:
    template.tenant_template_refresh()
    template.tenant_spares_drop()
    assert template.tenant_spares_replenish(keep=keep) == keep
    spares = template.tenant_spares()
    assert len(spares) == keep
    return spares


def _rows_in(schema: str) -> dict[str, int]:
    """Rows per table of ``schema`` (the migration-written tables included)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT relname FROM pg_class WHERE relnamespace = %s::regnamespace AND relkind = 'r'", [schema])
        tables = [name for (name,) in cursor.fetchall()]
        counts = {}
        for table in tables:
            cursor.execute(f'SELECT count(*) FROM "{schema}"."{table}"')
            counts[table] = cursor.fetchone()[0]
    return counts


def test_a_sign_up_renames_a_spare_which_is_exactly_a_clone_of_the_template(tenant_a):
    (spare,) = _fresh_spares(1)
    result = _sign_up("sparetaken")
    schema = result.tenant.schema_name
    assert not schema_exists(spare) and template.tenant_spares() == []  # the spare became the tenant
    template.tenant_schema_clone("clone_check")  # equal to a migrated schema (test_tenant_template.py)
    taken, cloned = _catalog(schema), _catalog("clone_check")
    for part in cloned:
        if part == "sequences":  # the new tenant's admin user moved its users sequence; nothing else did
            continue
        assert taken[part] == cloned[part], part
    rows = _rows_in(schema)
    expected = _rows_in("clone_check")
    expected["accounts_user"] = 1
    assert rows == expected  # only the rows migrating wrote, and the new admin
    with schema_context(schema):
        from revexos.accounts.models import User

        assert list(User.objects.values_list("id", "email")) == [(1, "admin@sparetaken.test")]
    connection.set_schema_to_public()


def test_a_spare_never_carries_a_previous_tenants_data(tenant_a):
    _fresh_spares(2)
    first = _sign_up("sparefirst").tenant.schema_name
    with schema_context(first):
        from contracts.models import Customer

        Customer.objects.create(external_id="private-1", legal_name="First's client")
    connection.set_schema_to_public()
    assert template.tenant_spares_replenish() == 1  # back to two, made from the template
    second = _sign_up("sparesecond").tenant.schema_name
    assert second != first
    with schema_context(second):
        from contracts.models import Customer

        assert Customer.objects.count() == 0
    connection.set_schema_to_public()
    for spare in template.tenant_spares():
        counts = _rows_in(spare)
        assert counts["contracts_customer"] == 0 and counts["accounts_user"] == 0


def test_with_no_spare_left_a_sign_up_clones(tenant_a):
    template.tenant_template_refresh()
    template.tenant_spares_drop()
    result = _sign_up("noclonespare")
    assert schema_exists(result.tenant.schema_name) and template.tenant_spares() == []
    with schema_context(result.tenant.schema_name):
        from revexos.accounts.models import User

        assert User.objects.count() == 1
    connection.set_schema_to_public()


def test_a_spare_of_another_template_state_is_never_taken_and_is_dropped(tenant_a):
    (spare,) = _fresh_spares(1)
    with connection.cursor() as cursor:
        cursor.execute(f'COMMENT ON SCHEMA "{spare}" IS %s', ["revexos tenant spare 0:an-older-template"])
    assert template.tenant_spares() == []
    result = _sign_up("stalespare")
    assert result.tenant.schema_name != spare and schema_exists(spare)  # cloned instead
    assert template.tenant_spares_replenish(keep=1) == 1
    assert not schema_exists(spare) and len(template.tenant_spares()) == 1


def test_refreshing_the_template_discards_the_spares(tenant_a, monkeypatch):
    (spare,) = _fresh_spares(1)
    table = f"{template.TEMPLATE_SCHEMA}.django_migrations"
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table} WHERE id = (SELECT max(id) FROM {table}) RETURNING id, app, name")
        row = cursor.fetchone()

    def migrate_schemas(command, *, schema_name, **options):
        # The row back under its own id: the template's sequence (not rolled back with the test) stays put.
        with connection.cursor() as cursor:
            cursor.execute(f"INSERT INTO {table} (id, app, name, applied) VALUES (%s, %s, %s, now())", row)

    monkeypatch.setattr(template, "call_command", migrate_schemas)
    assert template.tenant_template_refresh() is True
    assert not schema_exists(spare) and template.tenant_spares() == []


def test_taking_a_spare_asks_a_worker_for_another_after_commit(
    tenant_a, monkeypatch, django_capture_on_commit_callbacks
):
    from revexos.celery import app

    _fresh_spares(1)
    sent = []
    monkeypatch.setattr(app, "send_task", lambda name, **options: sent.append(name))
    with django_capture_on_commit_callbacks(execute=True):
        _sign_up("spareasks")
    assert sent == ["revexos.tenancy.tasks.tenant_spares_replenish"]
