"""New tenant schemas are clones of a migrated template: the same catalog as migrating, fresh sequences."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import connection
from django_tenants.utils import schema_context

from revexos.tenancy.services import template
from revexos.tenancy.services.provisioning import tenant_provision

pytestmark = pytest.mark.django_db


def _catalog(schema: str) -> dict[str, list]:
    """Everything a schema's definition and its migration-written rows consist of, schema name blanked."""
    connection.set_schema_to_public()
    prefix = f"{schema}."

    def rows(sql: str) -> list:
        with connection.cursor() as cursor:
            cursor.execute(sql, {"s": schema})
            return [tuple(str(v).replace(prefix, "S.") if isinstance(v, str) else v for v in r) for r in cursor]

    ns = "%(s)s::regnamespace"
    return {
        "columns": rows(
            # column order, not attnum: a migrated table keeps dropped columns' numbers, a clone does not
            f"""SELECT r.relname, row_number() OVER (PARTITION BY r.relname ORDER BY a.attnum), a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                       pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated, a.attcollation::regcollation::text,
                       a.attstorage, r.reloptions::text
                FROM pg_attribute a JOIN pg_class r ON r.oid = a.attrelid
                LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                WHERE r.relnamespace = {ns} AND r.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
                ORDER BY 1, 2"""
        ),
        "constraints": rows(
            f"""SELECT r.relname, c.conname, c.contype, pg_get_constraintdef(c.oid), c.condeferrable,
                       c.condeferred, c.convalidated
                FROM pg_constraint c JOIN pg_class r ON r.oid = c.conrelid
                WHERE r.relnamespace = {ns} ORDER BY 1, 2"""
        ),
        "indexes": rows(
            f"""SELECT r.relname, i.relname, pg_get_indexdef(x.indexrelid)
                FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class r ON r.oid = x.indrelid
                WHERE r.relnamespace = {ns} ORDER BY 1, 2"""
        ),
        "sequences": rows(
            f"""SELECT s.sequencename, s.data_type::text, s.start_value, s.increment_by, s.min_value, s.max_value,
                       s.cycle, s.last_value, d.refobjid::regclass::text, d.refobjsubid, d.deptype
                FROM pg_sequences s JOIN pg_class c ON c.relname = s.sequencename AND c.relnamespace = {ns}
                LEFT JOIN pg_depend d ON d.objid = c.oid AND d.classid = 'pg_class'::regclass AND d.refobjsubid > 0
                WHERE s.schemaname = %(s)s ORDER BY 1"""
        ),
        "triggers": rows(
            f"""SELECT r.relname, t.tgname, pg_get_triggerdef(t.oid) FROM pg_trigger t
                JOIN pg_class r ON r.oid = t.tgrelid WHERE r.relnamespace = {ns} AND NOT t.tgisinternal ORDER BY 1, 2"""
        ),
        "functions": rows(f"SELECT proname, pg_get_functiondef(oid) FROM pg_proc WHERE pronamespace = {ns} ORDER BY 1"),
        "relations": rows(f"SELECT relname, relkind FROM pg_class WHERE relnamespace = {ns} ORDER BY 1"),
        "migrations": rows("SELECT app, name FROM %(s)s.django_migrations ORDER BY 1, 2".replace("%(s)s", schema)),
        "content_types": rows(
            "SELECT id, app_label, model FROM %(s)s.django_content_type ORDER BY 1".replace("%(s)s", schema)
        ),
        "permissions": rows(
            "SELECT id, content_type_id, codename, name FROM %(s)s.auth_permission ORDER BY 1".replace("%(s)s", schema)
        ),
    }


def test_a_cloned_schema_is_exactly_a_migrated_one():
    template.tenant_template_refresh()
    with connection.cursor() as cursor:
        cursor.execute("CREATE SCHEMA migrated_check")
    call_command("migrate_schemas", tenant=True, schema_name="migrated_check", interactive=False, verbosity=0)
    template.tenant_schema_clone("cloned_check")

    migrated, cloned = _catalog("migrated_check"), _catalog("cloned_check")
    assert migrated["columns"] and migrated["constraints"] and migrated["triggers"] and migrated["migrations"]
    for part in migrated:
        assert cloned[part] == migrated[part], part


def test_a_provisioned_tenant_starts_with_fresh_sequences_and_no_rows_but_the_migrations(tenant_a):
    result = tenant_provision(
        slug="clonecheck",
        name="Clone check",
        admin_email="admin@clonecheck.test",
        admin_password="Tidy-Lantern-Orbit-77",
    )
    schema = result.tenant.schema_name
    with schema_context(schema):
        from contracts.models import Contract
        from revexos.accounts.models import User

        assert Contract.objects.count() == 0
        assert list(User.objects.values_list("id", "email")) == [(1, "admin@clonecheck.test")]
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM billing_invoice")
            assert cursor.fetchone()[0] == 0
    with connection.cursor() as cursor:  # the template never receives a tenant's rows
        cursor.execute(f"SELECT count(*) FROM {template.TEMPLATE_SCHEMA}.accounts_user")
        assert cursor.fetchone()[0] == 0
    connection.set_schema_to_public()


def test_a_stale_template_is_migrated_before_the_next_clone(tenant_a, monkeypatch):
    """A deploy adds a migration: the template's django_migrations rows lack it, so the next clone
    first migrates the template (the migration itself is simulated by re-recording the row)."""
    template.tenant_template_refresh()
    table = f"{template.TEMPLATE_SCHEMA}.django_migrations"
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table} WHERE id = (SELECT max(id) FROM {table}) RETURNING app, name")
        app, name = cursor.fetchone()
    assert not template.template_is_current()
    migrated = []

    def migrate_schemas(command, *, schema_name, **options):
        migrated.append((command, schema_name))
        with connection.cursor() as cursor:
            cursor.execute(f"INSERT INTO {table} (app, name, applied) VALUES (%s, %s, now())", [app, name])

    monkeypatch.setattr(template, "call_command", migrate_schemas)
    template.tenant_schema_clone("after_deploy")
    assert migrated == [("migrate_schemas", template.TEMPLATE_SCHEMA)]
    assert template.template_is_current() and template.tenant_template_refresh() is False


def test_the_clone_script_is_read_from_the_catalog_once_per_template_state(tenant_a, monkeypatch):
    """Another process (here: the process cache cleared) finds the script stored with the template."""
    template.tenant_template_refresh()
    applied = template._template_applied()
    template._clone_script.cache_clear()
    first = template._clone_script(applied)  # read from the catalog (and stored), or read stored
    template._clone_script.cache_clear()

    def never(applied):
        raise AssertionError("the stored script should have been used")

    monkeypatch.setattr(template, "_clone_script_build", never)
    assert template._clone_script(applied) == first
    template._clone_script.cache_clear()
    monkeypatch.undo()
    template.tenant_schema_clone("script_check")  # a clone from the stored script is a whole schema
    assert _catalog("script_check")["constraints"] == _catalog(template.TEMPLATE_SCHEMA)["constraints"]


def test_the_migrations_on_disk_are_those_djangos_loader_finds():
    from django.db.migrations.loader import MigrationLoader

    template._migrations_on_disk.cache_clear()
    assert template._migrations_on_disk() == frozenset(MigrationLoader(None, ignore_no_migrations=True).graph.nodes)
