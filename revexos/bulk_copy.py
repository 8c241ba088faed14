"""Many new rows of one model in one PostgreSQL COPY: what ``bulk_create`` stores, without its INSERT.

``bulk_create`` of a few thousand rows builds one statement with a parameter per value and has the
driver bind them client-side: most of a billing chunk's writing time went there, not in PostgreSQL.
COPY streams the same prepared values. Primary keys are taken from the table's sequence first (one
statement), so callers get them as with ``bulk_create``; other columns PostgreSQL fills
(``GeneratedField``) are read back in one statement. Triggers fire as for an INSERT (COPY runs row
and statement triggers alike), and constraints hold: a violation fails the COPY and its transaction.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from datetime import datetime

from django.conf import settings
from django.db import connection, models
from django.db.models.fields import NOT_PROVIDED
from django.utils import timezone
from simple_history.utils import get_change_reason_from_object

# Fields whose stored value is the attribute itself (``get_db_prep_save`` returns it unchanged on
# PostgreSQL): read with getattr, the per-value preparation is the bulk of bulk_create's Python time.
_AS_IS = (
    models.AutoField,
    models.BigAutoField,
    models.IntegerField,
    models.BigIntegerField,
    models.SmallIntegerField,
    models.PositiveIntegerField,
    models.PositiveSmallIntegerField,
    models.PositiveBigIntegerField,
    models.CharField,
    models.TextField,
    models.BooleanField,
    models.DecimalField,
    models.DateField,
)


def _as_is(field: models.Field) -> bool:
    if isinstance(field, models.ForeignKey):
        return _as_is(field.target_field)
    return type(field) in _AS_IS and not getattr(field, "auto_now", False) and not getattr(field, "auto_now_add", False)


def _aware_as_is(field: models.Field) -> bool:
    """A datetime column whose aware values (and NULLs) are stored as they are; a naive one goes
    through the field (which warns and makes it aware)."""
    return type(field) is models.DateTimeField and not field.auto_now and not field.auto_now_add


def _value_preparer(field: models.Field):
    """value -> what COPY writes for ``field`` (``get_db_prep_save`` where it changes anything)."""
    if _as_is(field):
        return lambda v: v
    if _aware_as_is(field):
        return lambda v: (
            v
            if v is None or (isinstance(v, datetime) and v.tzinfo is not None)
            else field.get_db_prep_save(v, connection)
        )
    return lambda v: field.get_db_prep_save(v, connection)


def _preparers(fields: list[models.Field]) -> list:
    """Per field, obj -> the value COPY writes (what ``bulk_create`` would bind)."""

    def prepared(f):
        if _aware_as_is(f):
            value = _value_preparer(f)
            return lambda obj: value(getattr(obj, f.attname))
        return lambda obj: f.get_db_prep_save(f.pre_save(obj, True), connection)

    return [operator.attrgetter(f.attname) if _as_is(f) else prepared(f) for f in fields]


def _copy(cursor, table: str, fields: list[models.Field], rows) -> None:
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def rows_copy(objs: Sequence[models.Model], *, with_pk: bool = True) -> Sequence[models.Model]:
    """Insert ``objs`` (new instances of one model) with one COPY and return them, saved.

    ``with_pk``: take their primary keys from the sequence and set them (as ``bulk_create`` does);
    without it the column is left to its default and the instances keep no key (history rows).
    """
    if not objs:
        return objs
    model = type(objs[0])
    opts = model._meta
    pk = opts.pk
    fields = [f for f in opts.concrete_fields if not f.generated and (with_pk or f is not pk)]
    if any(f.db_default is not NOT_PROVIDED for f in fields):
        raise ValueError(f"{model.__name__}: columns with database defaults are not copied; use bulk_create")
    relations = [f for f in fields if f.is_relation and f.many_to_one]
    table = connection.ops.quote_name(opts.db_table)
    with connection.cursor() as cursor:
        if with_pk:
            wanted = [obj for obj in objs if obj.pk is None]
            if wanted:
                cursor.execute(
                    "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                    [table, pk.column, len(wanted)],
                )
                for obj, (value,) in zip(wanted, sorted(cursor.fetchall()), strict=True):
                    obj.pk = value
        # Related instances saved since these were built lend their keys (as bulk_create does).
        for f in relations:
            for obj in objs:
                related = f.get_cached_value(obj, None)
                if related is None:
                    continue
                if related.pk is None:
                    raise ValueError(
                        f"rows_copy() prohibited to prevent data loss due to unsaved related object '{f.name}'."
                    )
                if getattr(obj, f.attname) is None:
                    setattr(obj, f.attname, related.pk)
        preparers = _preparers(fields)
        _copy(cursor, table, fields, ([prepare(obj) for prepare in preparers] for obj in objs))
        returned = [f for f in opts.concrete_fields if f.db_returning and f is not pk]
        if with_pk and returned:
            cursor.execute(
                f"SELECT {pk.column}, {', '.join(connection.ops.quote_name(f.column) for f in returned)} "
                f"FROM {table} WHERE {pk.column} = ANY(%s)",
                [[obj.pk for obj in objs]],
            )
            by_pk = {row[0]: row[1:] for row in cursor.fetchall()}
            for obj in objs:
                for f, value in zip(returned, by_pk[obj.pk], strict=True):
                    setattr(obj, f.attname, value)
    for obj in objs:
        obj._state.adding = False
        obj._state.db = connection.alias
    return objs


def history_copy(instances: Sequence[models.Model], *, reason: str = "", history_type: str = "+") -> None:
    """The django-simple-history rows of ``instances`` (one model), the rows ``bulk_history_create``
    builds (user, date and reason from the instance when set), written with one COPY and no
    historical model instances."""
    if not instances or not getattr(settings, "SIMPLE_HISTORY_ENABLED", True):
        return
    historical = type(instances[0]).history.model
    opts = historical._meta
    tracked = {f.attname for f in historical.tracked_fields}
    fields = [f for f in opts.concrete_fields if f is not opts.pk]
    prepare = {f.attname: _value_preparer(f) for f in fields}
    rows = []
    for instance in instances:
        user = getattr(instance, "_history_user", historical.get_default_history_user(instance))
        extra = {
            "history_date": getattr(instance, "_history_date", timezone.now()),
            "history_user_id": user.pk if user is not None else None,
            "history_change_reason": get_change_reason_from_object(instance) or reason,
            "history_type": history_type,
            "history_relation_id": instance.pk,
        }
        rows.append(
            [
                prepare[f.attname](getattr(instance, f.attname) if f.attname in tracked else extra[f.attname])
                for f in fields
            ]
        )
    with connection.cursor() as cursor:
        _copy(cursor, connection.ops.quote_name(opts.db_table), fields, rows)
