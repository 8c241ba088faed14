"""Gapless document numbers per issuing entity (DESIGN.md §3).

Why an upsert on a counter row and not a PostgreSQL SEQUENCE: sequences are not transactional, so
a rolled-back issue would burn a number and leave a gap. The counter row is incremented with
``INSERT … ON CONFLICT DO UPDATE … RETURNING``, which takes the same row lock as
``SELECT … FOR UPDATE`` + ``UPDATE`` and also creates the row on first use without a race. The lock
is held until the issuing transaction commits: concurrent issuers for one entity queue up, and a
rollback gives the number back.
"""

from __future__ import annotations

from datetime import date

from django.db import connection

from billing.models import NumberSequence, NumberSequenceKind

# Credit notes share the entity's prefix, marked so they never collide with invoice numbers.
CREDIT_NOTE_MARK = "CN-"


def document_number_format(*, prefix: str, kind: str, year: int, value: int) -> str:
    """INV-2026-000042 for invoices, CN-INV-2026-000003 for credit notes."""
    mark = CREDIT_NOTE_MARK if kind == NumberSequenceKind.CREDIT_NOTE else ""
    return f"{mark}{prefix}{year}-{value:06d}"


def number_sequence_next(*, issuing_entity_id: int, kind: str) -> int:
    """The next value of the entity's sequence; must run inside the issuing transaction."""
    if not connection.in_atomic_block:
        raise RuntimeError("number_sequence_next must run inside the issuing transaction, or a rollback leaves a gap.")
    table = NumberSequence._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {table} (issuing_entity_id, kind, last_value) VALUES (%s, %s, 1)
            ON CONFLICT (issuing_entity_id, kind) DO UPDATE SET last_value = {table}.last_value + 1
            RETURNING last_value
            """,
            [issuing_entity_id, kind],
        )
        return cursor.fetchone()[0]


def number_range_take(*, issuing_entity_id: int, kind: str, count: int) -> int:
    """Reserve ``count`` consecutive values of the entity's sequence at once; returns the first.

    A billing run's chunk takes its numbers in one statement (the same locked counter row as
    ``number_sequence_next``, held until the chunk commits), so a chunk never leaves a gap either.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("number_range_take must run inside the issuing transaction, or a rollback leaves a gap.")
    if count < 1:
        raise ValueError("Take at least one number.")
    table = NumberSequence._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {table} (issuing_entity_id, kind, last_value) VALUES (%s, %s, %s)
            ON CONFLICT (issuing_entity_id, kind) DO UPDATE SET last_value = {table}.last_value + EXCLUDED.last_value
            RETURNING last_value
            """,
            [issuing_entity_id, kind, count],
        )
        return cursor.fetchone()[0] - count + 1


def document_number_assign(*, issuing_entity_id: int, prefix: str, kind: str, issue_date: date) -> str:
    value = number_sequence_next(issuing_entity_id=issuing_entity_id, kind=kind)
    return document_number_format(prefix=prefix, kind=kind, year=issue_date.year, value=value)
