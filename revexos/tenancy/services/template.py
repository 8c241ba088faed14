"""New tenant schemas cloned from a template schema kept at the latest migration.

Running every migration for a new tenant takes tens of seconds (dozens of migrations, each
introspecting and altering); copying an already-migrated schema's definitions takes well under a
second. The template ``_tenant_template`` (no slug maps to a leading underscore, so no tenant can
take the name) is migrated like any tenant schema by ``migrate_schemas`` and is never used: it holds
exactly what migrating leaves behind — tables, the ``django_migrations`` rows, the content types
and permissions written after migrating.

A clone is made in one statement batch: tables (``LIKE``: columns, types, defaults, identity and
generated columns, checks), the rows migrating wrote, primary keys and unique constraints, the
other indexes, foreign keys, the schema's trigger functions and their triggers — all read from the
catalog with the template's name swapped for the new schema's. Identity sequences are the new
tables' own, left where migrating leaves them; business tables are empty in the template, so no
tenant data can ever be copied. ``tests/test_tenant_template.py`` compares a clone's catalog with a
freshly migrated schema's.

django-tenants' own ``CloneSchema`` (``TENANT_BASE_SCHEMA``) was measured first: its generic
PL/pgSQL clone took 6 s here (plus the faked ``migrate_schemas`` it needs afterwards), over
the 2 s budget; this one takes about 0.5 s.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from functools import cache

from django.core.management import call_command
from django.db import connection, transaction
from django_tenants.utils import schema_exists

log = logging.getLogger(__name__)

TEMPLATE_SCHEMA = "_tenant_template"
_LOCK_KEY = 0x7E4A_7E11  # pg_advisory_xact_lock: one refresh of the template at a time
SPARE_PREFIX = "_tenant_spare_"
SPARES_KEPT = 2  # sign-ups served without a clone between two replenishments
_SPARE_LOCK_KEY = 0x7E4A_5BA1  # pg_advisory locks: one replenisher; (key, hash of name) one taker per spare
CLONE_FORMAT = 1  # bump when the clone script changes what a clone holds: older spares are then dropped


def _quote(name: str) -> str:
    return connection.ops.quote_name(name)


@cache
def _migrations_on_disk() -> frozenset[tuple[str, str]]:
    """Every migration a fully migrated schema has recorded (files do not change while a process runs).

    Named from the migration packages' module files, as Django's loader finds them, without importing
    each migration: building the loader's graph imports them all, a second of a web process's first
    sign-up. (A squashed migration and those it replaces are all named here; migrating records them
    all too.)"""
    import pkgutil
    from importlib import import_module

    from django.apps import apps
    from django.db.migrations.loader import MigrationLoader

    names = set()
    for app in apps.get_app_configs():
        module_name, _explicit = MigrationLoader.migrations_module(app.label)
        if module_name is None:
            continue
        try:
            module = import_module(module_name)
        except ModuleNotFoundError:
            continue
        if not hasattr(module, "__path__"):
            continue
        names.update(
            (app.label, name)
            for _finder, name, is_package in pkgutil.iter_modules(module.__path__)
            if not is_package and name[0] not in "_~"
        )
    return frozenset(names)


def _template_applied() -> frozenset[tuple[str, str]] | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", [f"{TEMPLATE_SCHEMA}.django_migrations"])
        if cursor.fetchone()[0] is None:
            return None
        cursor.execute(f"SELECT app, name FROM {_quote(TEMPLATE_SCHEMA)}.django_migrations")
        return frozenset(cursor.fetchall())


def template_is_current() -> bool:
    """The template exists and has recorded every migration on disk."""
    applied = _template_applied()
    return applied is not None and _migrations_on_disk() <= applied


def tenant_template_refresh(*, verbosity: int = 0) -> bool:
    """Create or migrate the template when it lags behind the migrations on disk; True when it did.

    Runs in its own transaction under an advisory lock, so two sign-ups racing a deploy migrate it once.
    """
    connection.set_schema_to_public()
    if template_is_current():
        return False
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
        if template_is_current():
            return False
        log.info("migrating the tenant template schema %s", TEMPLATE_SCHEMA)
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE SCHEMA IF NOT EXISTS {_quote(TEMPLATE_SCHEMA)}")
        call_command(
            "migrate_schemas", tenant=True, schema_name=TEMPLATE_SCHEMA, interactive=False, verbosity=verbosity
        )
        connection.set_schema_to_public()
    _clone_script.cache_clear()
    tenant_spares_drop()  # cloned from the template as it was
    return True


def _rows(sql: str, params=None) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])
        return cursor.fetchall()


@cache
def _clone_script(applied: frozenset[tuple[str, str]]) -> tuple[str, ...]:
    """The statements that rebuild the template under the placeholder schema name ``{schema}``.

    Cached per template state (``applied``) in the process and in the template schema's comment:
    reading the catalog and the probe clone (``_index_renames``) take as long as a clone, so only the
    first process to clone a given template state pays for them."""
    mark = f"{_spare_mark(applied)} on PostgreSQL {connection.pg_version}\n"
    connection.set_schema_to_public()
    (stored,) = _rows("SELECT obj_description(%s::regnamespace, 'pg_namespace')", [TEMPLATE_SCHEMA])[0]
    if stored and stored.startswith(mark):
        return tuple(json.loads(stored.removeprefix(mark)))
    statements = _clone_script_build(applied)
    with connection.cursor() as cursor:
        cursor.execute(f"COMMENT ON SCHEMA {_quote(TEMPLATE_SCHEMA)} IS %s", [mark + json.dumps(statements)])
    return statements


def _clone_script_build(applied: frozenset[tuple[str, str]]) -> tuple[str, ...]:
    """The clone script read from the catalog, with the search path on ``public``, so every template
    object comes back qualified with the template's name, which is what gets swapped."""
    connection.set_schema_to_public()
    template = _quote(TEMPLATE_SCHEMA)
    prefix = f"{_rows('SELECT quote_ident(%s)', [TEMPLATE_SCHEMA])[0][0]}."  # as the catalog functions print it
    ns = "%s::regnamespace"
    tables = [
        name
        for (name,) in _rows(
            f"SELECT relname FROM pg_class WHERE relnamespace = {ns} AND relkind = 'r' ORDER BY relname",
            [TEMPLATE_SCHEMA],
        )
    ]
    # INCLUDING ALL copies indexes and key constraints as parsed trees (re-running pg_get_indexdef's
    # text would reword partial-index predicates); they get default names, renamed below.
    statements = ["CREATE SCHEMA {schema}"]
    statements += [f"CREATE TABLE {{schema}}.{_quote(t)} (LIKE {template}.{_quote(t)} INCLUDING ALL)" for t in tables]
    statements += _index_renames(statements, prefix)

    # The rows migrating wrote (django_migrations, content types, permissions), ids kept.
    if tables:
        probe = " UNION ALL ".join(
            f"SELECT {i} FROM (SELECT 1 FROM {template}.{_quote(t)} LIMIT 1) AS x{i}" for i, t in enumerate(tables)
        )
        filled = [tables[i] for (i,) in _rows(probe)]
    else:
        filled = []
    for table in filled:
        columns = [
            _quote(c)
            for (c,) in _rows(
                "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 "
                "AND NOT attisdropped AND attgenerated = '' ORDER BY attnum",
                [f"{TEMPLATE_SCHEMA}.{table}"],
            )
        ]
        cols = ", ".join(columns)
        statements.append(
            f"INSERT INTO {{schema}}.{_quote(table)} ({cols}) OVERRIDING SYSTEM VALUE "
            f"SELECT {cols} FROM {template}.{_quote(table)}"
        )
    # Sequences that migrating moved (those of the filled tables), set where the template's stand.
    for seq, last_value in _rows(
        f"SELECT c.relname, s.last_value FROM pg_class c JOIN pg_sequences s "
        f"ON s.schemaname = %s AND s.sequencename = c.relname "
        f"WHERE c.relnamespace = {ns} AND c.relkind = 'S' AND s.last_value IS NOT NULL ORDER BY 1",
        [TEMPLATE_SCHEMA, TEMPLATE_SCHEMA],
    ):
        seq_name = f"{{schema}}.{_quote(seq)}".replace("'", "''")
        statements.append(f"SELECT setval('{seq_name}', {int(last_value)}, true)")

    foreign = _rows(
        f"""SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid)
            FROM pg_constraint c JOIN pg_class r ON r.oid = c.conrelid
            WHERE r.relnamespace = {ns} AND c.contype = 'f' ORDER BY c.conrelid::regclass::text, c.conname""",
        [TEMPLATE_SCHEMA],
    )

    def add_constraint(table: str, name: str, definition: str) -> str:
        table = table.removeprefix(prefix)
        return f"ALTER TABLE {{schema}}.{table} ADD CONSTRAINT {_quote(name)} {_swap(definition, prefix)}"

    statements += [add_constraint(t, n, d) for t, n, d in foreign]
    statements += [
        _swap(definition, prefix)
        for (definition,) in _rows(
            f"SELECT pg_get_functiondef(p.oid) FROM pg_proc p WHERE p.pronamespace = {ns} ORDER BY p.proname",
            [TEMPLATE_SCHEMA],
        )
    ]
    statements += [
        _swap(definition, prefix)
        for (definition,) in _rows(
            f"""SELECT pg_get_triggerdef(t.oid) FROM pg_trigger t JOIN pg_class r ON r.oid = t.tgrelid
                WHERE r.relnamespace = {ns} AND NOT t.tgisinternal ORDER BY r.relname, t.tgname""",
            [TEMPLATE_SCHEMA],
        )
    ]
    unsupported = _rows(
        f"""SELECT relname, relkind FROM pg_class WHERE relnamespace = {ns} AND relkind NOT IN ('r', 'i', 'S')
            UNION ALL SELECT typname, typtype FROM pg_type WHERE typnamespace = {ns} AND typtype NOT IN ('c', 'b')""",
        [TEMPLATE_SCHEMA, TEMPLATE_SCHEMA],
    )
    if unsupported:
        # A migration added a view, partitioned table or type: cloning would silently miss it.
        raise NotImplementedError(f"the tenant template holds objects the clone does not copy: {unsupported}")
    return tuple(statements)


_INDEXES = """
    SELECT r.relname, i.relname, regexp_replace(pg_get_indexdef(x.indexrelid), '^(CREATE (UNIQUE )?INDEX )\\S+ ON \\S+', '\\1'),
           coalesce(c.contype, '-')
    FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class r ON r.oid = x.indrelid
    LEFT JOIN pg_constraint c ON c.conindid = x.indexrelid AND c.contype IN ('p', 'u', 'x')
    WHERE r.relnamespace = %s::regnamespace ORDER BY 1, 3, 4, 2"""


_SEQUENCES = """
    SELECT sequencename, data_type::text, start_value, increment_by, min_value, max_value, cache_size, cycle
    FROM pg_sequences WHERE schemaname = %s ORDER BY 1"""


def _index_renames(create: list[str], prefix: str) -> list[str]:
    """ALTER INDEX statements giving a clone's indexes (and their constraints) the template's names,
    and ALTER SEQUENCE ones where a clone's identity sequence options differ from the template's.

    ``LIKE ... INCLUDING INDEXES`` names indexes by PostgreSQL's default rule, deterministically for
    a given template: the names are learnt once from a probe clone made and rolled back here, and
    each index matched to the template's by table and definition. Renamed in two steps, as a
    default name may be another index's template name.
    """
    probe = f"{TEMPLATE_SCHEMA}_probe"

    class Probed(Exception):
        pass

    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(";\n".join(create).format(schema=_quote(probe)))
            cloned = _rows(_INDEXES, [probe])
            cloned_sequences = {r[0]: r[1:] for r in _rows(_SEQUENCES, [probe])}
            raise Probed
    except Probed:
        pass
    original = _rows(_INDEXES, [TEMPLATE_SCHEMA])
    wanted: dict[tuple, list[str]] = {}
    for table, name, definition, kind in original:
        wanted.setdefault((table, definition, kind), []).append(name)
    if sorted((t, d, k) for t, _, d, k in cloned) != sorted((t, d, k) for t, _, d, k in original):
        raise NotImplementedError("a clone's indexes do not match the tenant template's")
    first, second = [], []
    for n, (table, name, definition, kind) in enumerate(cloned):
        target = wanted[(table, definition, kind)].pop(0)
        if target != name:
            step = f"_clone_index_{n}"
            first.append(f"ALTER INDEX {{schema}}.{_quote(name)} RENAME TO {_quote(step)}")
            second.append(f"ALTER INDEX {{schema}}.{_quote(step)} RENAME TO {_quote(target)}")
    # LIKE gives an identity sequence its column's type; migrating may have left another (an
    # integer sequence behind a column widened to bigint): restate what differs.
    for name, options in ((r[0], r[1:]) for r in _rows(_SEQUENCES, [TEMPLATE_SCHEMA])):
        if cloned_sequences.get(name) != options:
            data_type, start, increment, minimum, maximum, cache_size, cycle = options
            second.append(
                f"ALTER SEQUENCE {{schema}}.{_quote(name)} AS {data_type} INCREMENT BY {int(increment)} "
                f"MINVALUE {int(minimum)} MAXVALUE {int(maximum)} START WITH {int(start)} "
                f"CACHE {int(cache_size)} {'CYCLE' if cycle else 'NO CYCLE'}"
            )
    return first + second


def _swap(definition: str, prefix: str) -> str:
    # ``{schema}`` is filled with str.format later: escape the definition's own braces first.
    return definition.replace("{", "{{").replace("}", "}}").replace(prefix, "{schema}.")


def tenant_schema_clone(schema_name: str) -> None:
    """Create ``schema_name`` as a copy of the template's definitions (the caller's transaction)."""
    if schema_exists(schema_name):
        raise ValueError(f"schema {schema_name} already exists")
    tenant_template_refresh()
    connection.set_schema_to_public()
    _clone_into(schema_name, _template_applied())


def _clone_into(schema_name: str, applied: frozenset[tuple[str, str]]) -> None:
    script = ";\n".join(_clone_script(applied)).format(schema=_quote(schema_name))
    with connection.cursor() as cursor:
        cursor.execute(script)
    connection.set_schema_to_public()


def tenant_schema_create(schema_name: str) -> bool:
    """Create ``schema_name`` for a new tenant (the caller's transaction): a spare clone renamed when
    one of the current template is left, else a clone made now. True when a spare was taken; a task
    then makes another once the caller's transaction has committed."""
    if schema_exists(schema_name):
        raise ValueError(f"schema {schema_name} already exists")
    tenant_template_refresh()
    connection.set_schema_to_public()
    applied = _template_applied()
    if _spare_take(schema_name, applied):
        transaction.on_commit(_spares_replenish_enqueue)
        return True
    _clone_into(schema_name, applied)
    return False


# --------------------------------------------------------------------------- spares


def _spare_mark(applied: frozenset[tuple[str, str]]) -> str:
    """The template state a spare was cloned from: the clone format and every applied migration."""
    digest = hashlib.sha256(repr(sorted(applied)).encode()).hexdigest()[:24]
    return f"revexos tenant spare {CLONE_FORMAT}:{digest}"


def _spares() -> list[tuple[str, str | None]]:
    """Every spare schema with its mark, oldest name order."""
    return _rows(
        "SELECT nspname, obj_description(oid, 'pg_namespace') FROM pg_namespace "
        "WHERE starts_with(nspname, %s) ORDER BY nspname",
        [SPARE_PREFIX],
    )


def tenant_spares() -> list[str]:
    """The spare schemas a sign-up may take now (those of the current template)."""
    connection.set_schema_to_public()
    applied = _template_applied()
    if applied is None:
        return []
    mark = _spare_mark(applied)
    return [spare for spare, spare_mark in _spares() if spare_mark == mark]


def _spare_take(schema_name: str, applied: frozenset[tuple[str, str]]) -> bool:
    """Rename a spare of the current template to ``schema_name`` (the caller's transaction).

    Each spare is claimed with a transaction-level advisory lock, so two sign-ups never take the
    same one; the claim holds until the caller commits (the spare is then gone) or rolls back (the
    spare is left as it was). Inside a savepoint: if anything is off, nothing is renamed and the
    caller clones instead."""
    mark = _spare_mark(applied)
    for spare, spare_mark in _spares():
        if spare_mark != mark:
            continue
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_try_advisory_xact_lock(%s, hashtext(%s)) AND to_regnamespace(%s) IS NOT NULL",
                [_SPARE_LOCK_KEY, spare, _quote(spare)],
            )
            if not cursor.fetchone()[0]:
                continue  # another sign-up holds it, or took it since the list was read
            try:
                with transaction.atomic():
                    cursor.execute(f"ALTER SCHEMA {_quote(spare)} RENAME TO {_quote(schema_name)}")
                    cursor.execute(f"COMMENT ON SCHEMA {_quote(schema_name)} IS NULL")
                    # Renaming a schema does not rewrite function bodies: none may name it.
                    cursor.execute(
                        "SELECT count(*) FROM pg_proc WHERE pronamespace = %s::regnamespace "
                        "AND (strpos(prosrc, %s) > 0 OR strpos(coalesce(proconfig::text, ''), %s) > 0)",
                        [_quote(schema_name), spare, spare],
                    )
                    if cursor.fetchone()[0]:
                        raise ValueError(f"functions of spare {spare} name their schema")
            except Exception:
                log.warning("spare %s could not be taken; cloning instead", spare, exc_info=True)
                return False
        log.info("schema %s is spare %s renamed", schema_name, spare)
        return True
    return False


def tenant_spares_drop(*, stale_only: bool = False) -> list[str]:
    """Drop spare schemas (only those of another template state with ``stale_only``); their names."""
    connection.set_schema_to_public()
    applied = _template_applied() if stale_only else None
    mark = _spare_mark(applied) if applied is not None else None
    dropped = []
    for spare, spare_mark in _spares():
        if stale_only and spare_mark == mark:
            continue
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_try_advisory_xact_lock(%s, hashtext(%s)) AND to_regnamespace(%s) IS NOT NULL",
                [_SPARE_LOCK_KEY, spare, _quote(spare)],
            )
            if cursor.fetchone()[0]:  # not being taken right now
                cursor.execute(f"DROP SCHEMA {_quote(spare)} CASCADE")
                dropped.append(spare)
    return dropped


def tenant_spares_replenish(*, keep: int = SPARES_KEPT) -> int:
    """Bring the spares up to ``keep`` clones of the current template; returns how many were made.

    Each spare is committed on its own, so a sign-up can take the first while the second is being
    made. One replenisher at a time (a session advisory lock): a second one returns at once."""
    tenant_template_refresh()
    connection.set_schema_to_public()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [_SPARE_LOCK_KEY])
        if not cursor.fetchone()[0]:
            return 0
    made = 0
    try:
        tenant_spares_drop(stale_only=True)
        applied = _template_applied()
        mark = _spare_mark(applied)
        while sum(1 for _, spare_mark in _spares() if spare_mark == mark) < keep:
            spare = f"{SPARE_PREFIX}{uuid.uuid4().hex[:12]}"
            with transaction.atomic():
                _clone_into(spare, applied)
                with connection.cursor() as cursor:
                    cursor.execute(f"COMMENT ON SCHEMA {_quote(spare)} IS %s", [mark])
            made += 1
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [_SPARE_LOCK_KEY])
    return made


def _spares_replenish_enqueue() -> None:
    """Ask a worker for a new spare (after a sign-up took one). A broker that is down costs the next
    sign-up a clone, never this one its success."""
    from revexos.celery import app

    try:
        app.send_task("revexos.tenancy.tasks.tenant_spares_replenish", retry=False, ignore_result=True)
    except Exception:
        log.warning("could not ask for a new spare schema; the next sign-up may clone", exc_info=True)
