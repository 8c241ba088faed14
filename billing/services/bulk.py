"""A billing run's chunk of contracts, set-based: the month-end run (DESIGN.md §4, §6 "fast by design").

The computation is the engine's own (``triggers.contexts_load`` + ``contract_obligations``, what
``contract_bill_due`` and shadow billing run); only the writing differs. Where the per-contract path
stores one invoice at a time through the ORM, a chunk is written in one transaction with a fixed
number of statements, whatever the number of contracts:

    advisory locks of every contract of the chunk (one statement, in id order, so two runs over
    overlapping chunks queue instead of deadlocking, and the event flow waits for the chunk)
    → load (≈10 queries) → compute in memory (a contract whose pricing raises is reported with
    a review task and left out; its chunk-mates are billed)
    → discounts of the chunk locked and applied in memory by ``invoice_amounts`` (the same
    function the single path uses) → pre-send checks on the unsaved invoices
    → review tasks, milestones marked, invoices (drafts) and lines inserted, facts marked, deferred
    foreign keys checked → last, invoice numbers taken as one range per issuing entity from the
    locked counter, credits used, invoices numbered and issued, history rows, outbox rows for the
    e-mails (the counter rows stay locked until the commit: the less after them, the less the
    chunks of two workers queue).

E-mails (and the PDFs their sending renders) are queued after the commit, on the delivery queue.
If the write fails (a constraint, a bug), the transaction rolls back and the chunk is billed
contract by contract through ``contract_bill_due``, so one bad contract never sinks its chunk.
"""

from __future__ import annotations

import logging
import secrets
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from billing import hooks
from billing.models import (
    BillingReviewTask,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    NumberSequenceKind,
    ReviewTaskKind,
    ReviewTaskStatus,
    TimeEntry,
    UsageEvent,
)
from billing.services.adjustments import (
    discount_application_rows,
    invoice_amounts,
    invoice_amounts_set,
    invoice_credits_apply,
)
from billing.services.checks import invoice_presend_problems
from billing.services.context import current_tenant
from billing.services.delivery import delivery_build, delivery_key, invoice_recipients
from billing.services.enqueue import task_enqueue_on_commit
from billing.services.invoicing import (
    auto_issue_enabled,
    invoice_draft_build,
    invoice_line_groups,
    invoice_lines_build,
    milestones_mark,
)
from billing.services.numbering import document_number_format, number_range_take
from billing.services.triggers import BillingContext, contexts_load, contract_bill_due, contract_obligations
from discounts.models import Credit, CreditStatus, Discount, DiscountApplication, ExceptionStatus
from discounts.selectors import cycles_used, discount_covers
from discounts.services.lifecycle import discounts_used_up_expire
from revexos.bulk_copy import history_copy, rows_copy

logger = logging.getLogger(__name__)

DELIVERY_FANOUT_TASK = "billing.tasks.invoice_deliveries_send"


@dataclass
class ChunkBilled:
    """What a chunk did: counted contracts, invoices created (in contract order), errors by contract."""

    contracts: int = 0
    invoices: list[Invoice] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)
    mode: str = "bulk"  # bulk | one by one (after a failed bulk write)


@dataclass
class _Draft:
    ctx: BillingContext
    invoice: Invoice
    lines: list[InvoiceLine]
    specs: list
    applications: list[DiscountApplication] = field(default_factory=list)
    expire: tuple | None = None  # (discounts, cycles used before, applicator result): max_cycles bookkeeping
    issue: bool = False


# --------------------------------------------------------------------------- locks


def advisory_locks_take(contract_ids: list[int]) -> None:
    """Every contract's billing lock (the key ``contract_bill_due`` uses), in id order, in one statement."""
    if not contract_ids:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT count(pg_advisory_xact_lock(hashtextextended(%s || ids.id::text, 0)))
            FROM (SELECT DISTINCT unnest(%s::bigint[]) AS id ORDER BY 1) AS ids
            """,
            [f"billing:{connection.schema_name}:", list(contract_ids)],
        )


# --------------------------------------------------------------------------- the chunk


def billing_error_task_raise(*, contract_id: int, as_of: date, error: str) -> None:
    from billing.services.reviews import review_task_raise

    review_task_raise(
        kind=ReviewTaskKind.BILLING_ERROR,
        dedupe_key=f"billing-error:{contract_id}:{as_of}",
        title=f"Billing contract #{contract_id} as of {as_of} failed",
        detail=error[:2000],
        contract_id=contract_id,
    )


def billing_error_tasks_resolve(*, contract_ids: list[int], as_of: date) -> int:
    """A contract billed without error closes the billing-error tasks earlier runs raised for it."""
    if not contract_ids:
        return 0
    return BillingReviewTask.objects.filter(
        kind=ReviewTaskKind.BILLING_ERROR,
        status=ReviewTaskStatus.OPEN,
        contract_id__in=contract_ids,
        dedupe_key__startswith="billing-error:",
    ).update(
        status=ReviewTaskStatus.RESOLVED,
        resolution=f"Billed without error by the run as of {as_of:%-d %b %Y}.",
        resolved_at=timezone.now(),
    )


def contracts_bill_chunk(
    *,
    contract_ids: list[int],
    as_of: date,
    now: datetime | None = None,
    tenant=None,
    versions: dict[int, list] | None = None,
    inside: Callable[[ChunkBilled], None] | None = None,
) -> ChunkBilled:
    """Bill everything due for ``contract_ids`` as of ``as_of`` in one transaction.

    ``inside`` runs at the end of that transaction with the result (a run marks its chunk done
    there, so "done" and the invoices commit together).
    """
    tenant = tenant or current_tenant()
    ids = sorted(dict.fromkeys(int(c) for c in contract_ids))
    try:
        with transaction.atomic():
            result = _chunk_bill(ids=ids, as_of=as_of, now=now or timezone.now(), tenant=tenant, versions=versions)
            if inside is not None:
                inside(result)
        return result
    except Exception:
        logger.exception("bulk billing of %s contracts as of %s failed; billing them one by one", len(ids), as_of)
    result = ChunkBilled(mode="one by one")
    for contract_id in ids:
        try:
            billed = contract_bill_due(contract_id=contract_id, as_of=as_of, tenant=tenant)
        except Exception as exc:  # reported and surfaced as a review task; the others still bill
            logger.exception("billing contract %s as of %s failed", contract_id, as_of)
            result.errors.append({"contract": str(contract_id), "error": str(exc)[:500]})
            billing_error_task_raise(contract_id=contract_id, as_of=as_of, error=str(exc))
            continue
        result.contracts += 1
        result.invoices.extend(billed.invoices)
    billing_error_tasks_resolve(
        contract_ids=[c for c in ids if str(c) not in {e["contract"] for e in result.errors}], as_of=as_of
    )
    if inside is not None:
        with transaction.atomic():
            inside(result)
    return result


def _chunk_bill(*, ids: list[int], as_of: date, now: datetime, tenant, versions) -> ChunkBilled:
    result = ChunkBilled()
    advisory_locks_take(ids)
    loaded = contexts_load(contract_ids=ids, as_of=as_of, now=now, tenant=tenant, versions=versions)
    computed: list[BillingContext] = []
    for contract_id in ids:
        ctx = loaded[contract_id]
        if not isinstance(ctx, BillingContext):
            result.contracts += 1  # nothing to bill (draft, not started, no terms): evaluated all the same
            continue
        try:
            # Pricing is pure and in memory: a failure leaves nothing behind to roll back.
            contract_obligations(ctx)
        except Exception as exc:
            logger.exception("billing contract %s as of %s failed", contract_id, as_of)
            result.errors.append({"contract": str(contract_id), "error": str(exc)[:500]})
            continue
        result.contracts += 1
        computed.append(ctx)

    _reviews_store(computed)
    _time_marks_store(computed)
    drafts = _drafts_build(computed, as_of=as_of)
    _discounts_apply(drafts)
    for draft in drafts:
        _presend_check(draft, tenant=tenant)
    for error in result.errors:
        contract_id = int(error["contract"])
        billing_error_task_raise(contract_id=contract_id, as_of=as_of, error=error["error"])
    billing_error_tasks_resolve(contract_ids=[ctx.contract_id for ctx in computed], as_of=as_of)
    _drafts_store(drafts, as_of=as_of, now=now)  # last: it ends holding the number counters
    result.invoices = [d.invoice for d in drafts]
    return result


# --------------------------------------------------------------------------- what the triggers found


def _reviews_store(computed: list[BillingContext]) -> None:
    rows = [
        BillingReviewTask(
            kind=r.kind,
            dedupe_key=r.dedupe_key[:200],
            title=r.title[:300],
            detail=r.detail,
            contract_id=r.contract_id,
        )
        for ctx in computed
        for r in ctx.reviews
    ]
    if rows:
        BillingReviewTask.objects.bulk_create(rows, ignore_conflicts=True)  # raised once per dedupe key


def _time_marks_store(computed: list[BillingContext]) -> None:
    """Hours within a retainer's included hours, counted against the period's line billed earlier."""
    pairs = [(entry_id, line_id) for ctx in computed for ids, line_id in ctx.time_marks for entry_id in ids]
    _time_entries_mark(pairs)


def _time_entries_mark(pairs: list[tuple[int, int]]) -> None:
    if not pairs:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {TimeEntry._meta.db_table} AS t SET invoice_line_id = v.line_id
            FROM (SELECT unnest(%s::bigint[]) AS id, unnest(%s::bigint[]) AS line_id) AS v
            WHERE t.id = v.id AND t.invoice_line_id IS NULL
            """,
            [[p[0] for p in pairs], [p[1] for p in pairs]],
        )


# --------------------------------------------------------------------------- invoices in memory


def _drafts_build(computed: list[BillingContext], *, as_of: date) -> list[_Draft]:
    from contracts.models import IssuingEntity

    drafts = []
    entities = {ctx.contract.issuing_entity_id: ctx.contract.issuing_entity for ctx in computed}
    for ctx in computed:
        for version, group in invoice_line_groups(ctx.new_specs, billing_date=as_of):
            invoice = invoice_draft_build(contract=ctx.contract, version=version, specs=group, billing_date=as_of)
            invoice.customer = ctx.contract.customer
            drafts.append(
                _Draft(ctx=ctx, invoice=invoice, lines=invoice_lines_build(invoice=invoice, specs=group), specs=group)
            )
    # Amended terms may move a contract to another entity: every entity read once, not per invoice.
    missing = {d.invoice.issuing_entity_id for d in drafts} - set(entities)
    if missing:
        entities.update(IssuingEntity.objects.in_bulk(missing))
    for d in drafts:
        d.invoice.issuing_entity = entities[d.invoice.issuing_entity_id]
    return drafts


def _discounts_apply(drafts: list[_Draft]) -> None:
    """Discounts of the whole chunk, locked once (oldest first, the single path's order) and
    applied per invoice with ``invoice_amounts``; cycles used by one invoice count for the next."""
    if not drafts:
        return
    contract_ids = {d.invoice.contract_id for d in drafts}
    customer_ids = {d.invoice.customer_id for d in drafts}
    discounts = list(
        Discount.objects.exclude(status=ExceptionStatus.REVOKED)
        .filter(Q(contract_id__in=contract_ids) | Q(scope="customer", customer_id__in=customer_ids))
        .select_for_update(of=("self",))
        .order_by("created_at", "id")
    )
    used = cycles_used(discount_ids=[d.pk for d in discounts]) if discounts else {}
    # The chunk's tax rates, read once (the totals function would read them per invoice).
    from contracts.services.tax import line_categories, rates_for

    tax_rates = rates_for(
        countries={d.invoice.issuing_entity.country for d in drafts} | {d.invoice.customer.country for d in drafts}
    )
    # Likewise the tax category of every price line of the chunk (the profile's top query: one per invoice).
    tax_categories = line_categories([line.price_line_id for d in drafts for line in d.lines])
    for draft in drafts:
        invoice, lines = draft.invoice, draft.lines
        covering = [d for d in discounts if discount_covers(d, invoice=invoice, lines=lines)]
        result = invoice_amounts(
            invoice=invoice,
            lines=lines,
            discounts=covering,
            used=used,
            tax_rates=tax_rates,
            tax_categories=tax_categories,
        )
        invoice_amounts_set(invoice, result)
        draft.applications = discount_application_rows(invoice=invoice, lines=lines, result=result)
        for row in draft.applications:
            row.discount = next(d for d in covering if d.pk == row.discount_id)
        if covering:
            draft.expire = (covering, {k: set(v) for k, v in used.items()}, result)
            for discount_id, keys in result.cycles_by_discount().items():
                used.setdefault(discount_id, set()).update(keys)


def _presend_check(draft: _Draft, *, tenant) -> None:
    invoice, ctx = draft.invoice, draft.ctx
    # What the checks would query per invoice, handed over from the chunk's loading.
    invoice._presend_lines = draft.lines
    invoice._presend_versions = ctx.versions
    invoice._presend_overrides = ctx.facts.overrides
    invoice._presend_discount_rows = draft.applications
    problems = invoice_presend_problems(invoice)
    if problems:
        invoice.hold_reasons = problems
    else:
        draft.issue = auto_issue_enabled(ctx.contract, tenant=tenant)


# --------------------------------------------------------------------------- storing


def _drafts_store(drafts: list[_Draft], *, as_of: date, now: datetime) -> None:
    if not drafts:
        return
    issued = [d for d in drafts if d.issue]
    # Lock order: milestone rows before the lines that reference them (see invoicing.milestones_mark).
    milestones_mark([spec for d in drafts for spec in d.specs])
    rows_copy([d.invoice for d in drafts])  # as drafts, unnumbered: numbers are taken last (below)
    rows_copy([line for d in drafts for line in d.lines])  # their invoice ids are set now
    rows_copy([a for d in drafts for a in d.applications])  # their invoice and line ids are set now
    for d in drafts:
        if d.expire is not None:
            covering, used_before, result = d.expire
            discounts_used_up_expire(discounts=covering, used=used_before, result=result, invoice=d.invoice)
    _facts_mark(drafts)
    _holds_store([d for d in drafts if d.invoice.hold_reasons])
    # An issuing entity's counter row stays locked from the numbers to the commit, and every chunk
    # (and single issue) of that entity queues on it. So the chunk takes it last: what needs no
    # number is written above, and the foreign keys deferred to the commit are checked now.
    connection.check_constraints()
    _numbers_assign(issued, as_of=as_of)
    _credits_apply(issued, as_of=as_of)
    _issue(issued, as_of=as_of, now=now)
    history_copy([d.invoice for d in drafts], reason="billing run")  # what bulk_history_create wrote
    _deliveries_queue(issued)


def _numbers_assign(issued: list[_Draft], *, as_of: date) -> None:
    """One range per issuing entity from its locked counter, in contract order (gapless: the
    counter row stays locked until the chunk commits, and a rollback gives the range back)."""
    by_entity: dict[int, list[_Draft]] = defaultdict(list)
    for d in issued:
        by_entity[d.invoice.issuing_entity_id].append(d)
    for entity_id in sorted(by_entity):
        group = by_entity[entity_id]
        first = number_range_take(issuing_entity_id=entity_id, kind=NumberSequenceKind.INVOICE, count=len(group))
        prefix = group[0].invoice.issuing_entity.invoice_prefix
        for offset, d in enumerate(group):
            d.invoice.number = document_number_format(
                prefix=prefix, kind=NumberSequenceKind.INVOICE, year=as_of.year, value=first + offset
            )
            d.invoice.pay_token = secrets.token_urlsafe(32)  # the customer's pay link, as at any issue


def _facts_mark(drafts: list[_Draft]) -> None:
    """Usage events and time entries point at the lines that billed them (two statements)."""
    usage = []
    time_pairs = []
    for d in drafts:
        for spec, line in zip(d.specs, d.lines, strict=True):
            for metric, start, end, max_id in spec.usage_marks:
                usage.append((line.pk, d.invoice.contract_id, metric, start, end, max_id))
            time_pairs.extend((entry_id, line.pk) for entry_id in spec.time_entry_ids)
    if usage:
        columns = list(zip(*usage, strict=True))
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                UPDATE {UsageEvent._meta.db_table} AS e SET invoice_line_id = v.line_id
                FROM (
                    SELECT unnest(%s::bigint[]) AS line_id, unnest(%s::bigint[]) AS contract_id,
                           unnest(%s::text[]) AS metric, unnest(%s::timestamptz[]) AS start,
                           unnest(%s::timestamptz[]) AS stop, unnest(%s::bigint[]) AS max_id
                ) AS v
                WHERE e.contract_id = v.contract_id AND e.metric = v.metric AND e.timestamp >= v.start
                  AND e.timestamp < v.stop AND e.id <= v.max_id AND e.invoice_line_id IS NULL
                """,
                [list(c) for c in columns],
            )
    _time_entries_mark(time_pairs)


def _credits_apply(issued: list[_Draft], *, as_of: date) -> None:
    """Credits reduce the amount due at issue, while the rows are still drafts (as ``_issue`` does)."""
    if not issued:
        return
    holders = set(
        Credit.objects.filter(
            customer_id__in={d.invoice.customer_id for d in issued}, status=CreditStatus.ACTIVE, balance__gt=0
        ).values_list("customer_id", flat=True)
    )
    for d in issued:
        if d.invoice.customer_id in holders:
            invoice_credits_apply(invoice=d.invoice, on=as_of)


def _issue(issued: list[_Draft], *, as_of: date, now: datetime) -> None:
    """Drafts take their numbers and pay links and become issued in one statement; then the issue
    hooks (unapplied cash)."""
    if not issued:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {Invoice._meta.db_table} AS i
            SET status = %s, issue_date = %s, due_date = %s::date + i.payment_terms_days, issued_at = %s,
                number = v.number, pay_token = v.pay_token
            FROM (SELECT unnest(%s::bigint[]) AS id, unnest(%s::text[]) AS number, unnest(%s::text[]) AS pay_token) AS v
            WHERE i.id = v.id AND i.status = %s
            """,
            [
                InvoiceStatus.ISSUED,
                as_of,
                as_of,
                now,
                [d.invoice.pk for d in issued],
                [d.invoice.number for d in issued],
                [d.invoice.pay_token for d in issued],
                InvoiceStatus.DRAFT,
            ],
        )
    for d in issued:
        invoice = d.invoice
        invoice.status = InvoiceStatus.ISSUED
        invoice.issue_date = as_of
        invoice.due_date = as_of + timedelta(days=invoice.payment_terms_days)
        invoice.issued_at = now
    hooks.invoices_issued(invoices=[d.invoice for d in issued])


def _holds_store(held: list[_Draft]) -> None:
    """A held draft asks finance to look at it (the task ``invoice_hold`` raises)."""
    if not held:
        return
    BillingReviewTask.objects.bulk_create(
        [
            BillingReviewTask(
                kind=ReviewTaskKind.PRESEND_CHECK,
                dedupe_key=f"presend:{d.invoice.pk}",
                title=f"Invoice draft #{d.invoice.pk} for {d.invoice.contract.number} is held"[:300],
                detail="\n".join(d.invoice.hold_reasons),
                contract_id=d.invoice.contract_id,
                invoice_id=d.invoice.pk,
            )
            for d in held
        ],
        ignore_conflicts=True,
    )


def _deliveries_queue(issued: list[_Draft]) -> None:
    """Outbox rows now; the sends (and the PDFs they render) on the delivery queue after commit."""
    rows = [delivery_build(d.invoice, key=delivery_key(d.invoice)) for d in issued if invoice_recipients(d.invoice)]
    if not rows:
        return
    stored = rows_copy(rows)
    task_enqueue_on_commit(DELIVERY_FANOUT_TASK, delivery_ids=[row.pk for row in stored])
