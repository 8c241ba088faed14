"""Billing runs: every contract of the tenant evaluated as of a date, and the bookkeeping of runs.

Two ways to bill many contracts, with the same computation (``billing/services/triggers.py``):

- ``billing_run`` — contract by contract, each in its own transaction (the event flow's few
  contracts, and the reference the chunked run is tested against);
- ``billing_run_chunked`` — ``CHUNK_SIZE`` contracts per transaction, set-based
  (``billing/services/bulk.py``): the cycle's billing step, i.e. the month-end run.

A recorded run (``BillingRun``: ``POST /api/v1/runs`` or the beat) survives faults:

- its per-contract steps are split into ``BillingRunChunk`` rows; a chunk is claimed under a lease
  and marked done in the transaction that bills it, so a chunk whose worker died is redone by
  whoever claims it next, and nothing is billed twice (billing keys, advisory locks);
- the executor renews the run's lease as it goes; a run whose lease ran out is taken over by the
  next delivery of its task or by ``runs_sweep`` (on the beat), and resumes from its chunks;
- a run still queued after ``RUN_QUEUED_GRACE`` (its task was never sent: the broker was down) is
  sent again by the sweep;
- after ``RUN_MAX_ATTEMPTS`` executions a run fails instead of looping, saying why;
- a run in which contracts failed ends ``completed_with_errors`` with their count.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from datetime import date, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from billing.models import (
    RUN_FINISHED,
    BillingRun,
    BillingRunChunk,
    BillingRunChunkStatus,
    BillingRunStatus,
    InvoiceStatus,
)
from billing.selectors import contract_versions_many
from billing.services.context import current_tenant
from billing.services.enqueue import task_enqueue_on_commit
from billing.services.triggers import BILLABLE_CONTRACT_STATUSES, contract_bill_due

logger = logging.getLogger(__name__)

SUMMARY_INVOICE_LIMIT = 1000
PRELOAD = 500  # a run over thousands of contracts lists the first ones and counts the rest
RUN_MAX_ATTEMPTS = 3
CHUNK_MAX_ATTEMPTS = 3
RUN_EXECUTE_TASK = "billing.tasks.run_execute"
CHUNK_TASK = "billing.tasks.cycle_chunk"


def chunk_size() -> int:
    return settings.BILLING_CHUNK_SIZE


def lease() -> timedelta:
    return timedelta(seconds=settings.BILLING_RUN_LEASE_SECONDS)


def billable_contract_ids(*, as_of: date) -> list[int]:
    from contracts.models import Contract

    return list(
        Contract.objects.filter(status__in=BILLABLE_CONTRACT_STATUSES, start_date__lte=as_of)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


# --------------------------------------------------------------------------- summaries


def _summary_add(counts: Counter, invoices: list[dict], billed: list) -> None:
    for invoice in billed:
        counts["invoices_created"] += 1
        counts["invoices_issued" if invoice.status == InvoiceStatus.ISSUED else "invoices_held"] += 1
        if len(invoices) < SUMMARY_INVOICE_LIMIT:
            invoices.append(
                {
                    "id": str(invoice.pk),
                    "number": invoice.number,
                    "status": invoice.status,
                    "contract": invoice.contract.number,
                    "currency": invoice.currency,
                    "total": str(invoice.total),
                    "hold_reasons": invoice.hold_reasons,
                }
            )


def _summary(counts: Counter, invoices: list[dict], errors: list[dict], contracts: int) -> dict:
    return {
        "contracts_evaluated": contracts,
        "invoices_created": counts["invoices_created"],
        "invoices_issued": counts["invoices_issued"],
        "invoices_held": counts["invoices_held"],
        "invoices": invoices,
        "errors": errors,
    }


def chunk_summary(chunk) -> dict:
    """A chunk's result (``ChunkBilled``) in the run summary's shape."""
    counts: Counter = Counter()
    invoices: list[dict] = []
    _summary_add(counts, invoices, chunk.invoices)
    return _summary(counts, invoices, chunk.errors, chunk.contracts)


def summaries_merge(parts: list[dict]) -> dict:
    merged = _summary(Counter(), [], [], 0)
    for part in parts:
        for key in ("contracts_evaluated", "invoices_created", "invoices_issued", "invoices_held"):
            merged[key] += part.get(key, 0)
        room = SUMMARY_INVOICE_LIMIT - len(merged["invoices"])
        merged["invoices"].extend(part.get("invoices", [])[: max(room, 0)])
        merged["errors"].extend(part.get("errors", []))
    return merged


# --------------------------------------------------------------------------- the two ways to bill many


def billing_run(*, as_of: date, contract_ids: list[int] | None = None) -> dict:
    """Bill what is due for each contract as of ``as_of``, each in its own transaction; a failing
    contract does not stop the others (it is reported and gets a review task).

    A run killed half-way keeps the contracts it finished and the rerun does the rest (their
    billing keys make the finished ones no-ops).
    """
    from billing.services.bulk import billing_error_task_raise, billing_error_tasks_resolve

    ids = billable_contract_ids(as_of=as_of) if contract_ids is None else list(contract_ids)
    counts: Counter = Counter()
    invoices: list[dict] = []
    errors: list[dict] = []
    billed_ok: list[int] = []
    tenant = current_tenant()
    terms: dict[int, list] = {}
    for position, contract_id in enumerate(ids):
        if position % PRELOAD == 0:
            # Terms for the next slice in 4 queries instead of 4 per contract.
            terms = contract_versions_many(contract_ids=ids[position : position + PRELOAD])
        try:
            result = contract_bill_due(
                contract_id=contract_id, as_of=as_of, versions=terms.get(contract_id), tenant=tenant
            )
        except Exception as exc:  # logged and surfaced as a review task; the other contracts still bill
            logger.exception("billing contract %s as of %s failed", contract_id, as_of)
            errors.append({"contract": str(contract_id), "error": str(exc)[:500]})
            billing_error_task_raise(contract_id=contract_id, as_of=as_of, error=str(exc))
            continue
        billed_ok.append(contract_id)
        counts["contracts"] += 1
        _summary_add(counts, invoices, result.invoices)
    billing_error_tasks_resolve(contract_ids=billed_ok, as_of=as_of)
    return _summary(counts, invoices, errors, counts["contracts"])


def billing_run_chunked(*, as_of: date, contract_ids: list[int] | None = None, chunk_size: int | None = None) -> dict:
    """Bill what is due for each contract as of ``as_of``, a chunk of contracts per transaction
    (``billing/services/bulk.py``); a failing contract does not stop the others. A run killed
    half-way keeps the chunks it committed; the rerun finds them done by their billing keys."""
    from billing.services.bulk import contracts_bill_chunk

    size = chunk_size or globals()["chunk_size"]()
    ids = billable_contract_ids(as_of=as_of) if contract_ids is None else list(contract_ids)
    tenant = current_tenant()
    parts = [
        chunk_summary(contracts_bill_chunk(contract_ids=ids[start : start + size], as_of=as_of, tenant=tenant))
        for start in range(0, len(ids), size)
    ]
    return summaries_merge(parts)


# --------------------------------------------------------------------------- recorded runs


def run_create(*, as_of: date, only: list[str] | None, trigger: str = "api") -> BillingRun:
    return BillingRun.objects.create(as_of=as_of, only=list(only or []), trigger=trigger)


def run_enqueue(run: BillingRun) -> None:
    """Send the run's task after commit; if the broker is down, the sweep sends it later."""
    task_enqueue_on_commit(RUN_EXECUTE_TASK, run_id=str(run.pk))


def _claim(run_id) -> BillingRun | None:
    """queued (or running with an expired lease) → running under our lease; None when not ours."""
    now = timezone.now()
    with transaction.atomic():
        run = BillingRun.objects.select_for_update().get(pk=run_id)
        if run.status in RUN_FINISHED:
            return None
        if run.status == BillingRunStatus.RUNNING and run.lease_until and run.lease_until > now:
            return None  # alive elsewhere: a redelivered task leaves it alone
        if run.attempts >= RUN_MAX_ATTEMPTS:
            run.status, run.finished_at = BillingRunStatus.FAILED, now
            run.error = (
                f"The run was started {run.attempts} times and its worker stopped each time (killed, out of "
                "memory or restarted) before it finished. What it billed is kept; run it again once the "
                "workers are healthy."
            )
            run.save(update_fields=["status", "finished_at", "error"])
            return None
        resumed = run.status == BillingRunStatus.RUNNING
        run.status = BillingRunStatus.RUNNING
        run.started_at = run.started_at or now
        run.attempts += 1
        run.lease_until = now + lease()
        run.save(update_fields=["status", "started_at", "attempts", "lease_until"])
    if resumed:
        logger.warning("run %s was abandoned by its worker; resuming it (attempt %s)", run.pk, run.attempts)
    return run


def _renew(run: BillingRun) -> None:
    BillingRun.objects.filter(pk=run.pk, status=BillingRunStatus.RUNNING).update(lease_until=timezone.now() + lease())


def run_execute(*, run_id, helpers: int = 0) -> BillingRun:
    """Execute (or resume) a recorded run and store its summary: the sync API call or the async task.

    Steps run in cycle order. A per-contract step is split into chunks; ``helpers`` extra tasks are
    sent to share them with other workers while this one works through them too.
    """
    from billing.cycle import cycle_steps

    run = _claim(run_id)
    if run is None:
        return BillingRun.objects.get(pk=run_id)
    try:
        for step in cycle_steps(run.only or None):
            if step.name in run.steps_done:
                continue
            if step.contract_ids is None:
                result = step.prepare(as_of=run.as_of) if step.prepare is not None else {}
                result = {**result, **step.run(as_of=run.as_of)}
            else:
                result = _step_chunked(run, step, helpers=helpers)
            errors = len(result.get("errors", []))
            with transaction.atomic():
                BillingRun.objects.filter(pk=run.pk).update(
                    summary={**BillingRun.objects.get(pk=run.pk).summary, step.name: result},
                    steps_done=[*run.steps_done, step.name],
                    errors_count=F("errors_count") + errors,
                    lease_until=timezone.now() + lease(),
                )
            run.refresh_from_db()
    except Exception as exc:
        BillingRun.objects.filter(pk=run.pk).update(
            status=BillingRunStatus.FAILED, error=str(exc)[:2000], finished_at=timezone.now(), lease_until=None
        )
        raise
    run.status = BillingRunStatus.COMPLETED_WITH_ERRORS if run.errors_count else BillingRunStatus.SUCCEEDED
    run.finished_at, run.lease_until = timezone.now(), None
    run.save(update_fields=["status", "finished_at", "lease_until"])
    return run


def _step_chunked(run: BillingRun, step, *, helpers: int) -> dict:
    """Split the step's contracts into chunks once, work through them, wait for the ones others hold."""
    with transaction.atomic():
        locked = BillingRun.objects.select_for_update().get(pk=run.pk)
        prepared = locked.summary.get("_prepared", {})
        if step.name not in prepared:
            result = step.prepare(as_of=run.as_of) if step.prepare is not None else {}
            ids = step.contract_ids(as_of=run.as_of)
            size = chunk_size()
            BillingRunChunk.objects.bulk_create(
                [
                    BillingRunChunk(run=run, step=step.name, seq=n, contract_ids=ids[start : start + size])
                    for n, start in enumerate(range(0, len(ids), size))
                ]
            )
            locked.summary = {**locked.summary, "_prepared": {**prepared, step.name: result}}
            locked.save(update_fields=["summary"])
            prepared = locked.summary["_prepared"]
        for _ in range(helpers):
            task_enqueue_on_commit("billing.tasks.run_chunks_work", run_id=str(run.pk), step=step.name)
    while True:
        worked = run_chunks_work(run_id=run.pk, step=step.name, renew=run)
        open_chunks = BillingRunChunk.objects.filter(run=run, step=step.name).exclude(status=BillingRunChunkStatus.DONE)
        if not open_chunks.exists():
            break
        if not worked:
            # Other workers hold the rest: wait for them, renewing our lease, and take over any
            # chunk whose lease runs out.
            _renew(run)
            time.sleep(settings.BILLING_RUN_POLL_SECONDS)
    parts = list(
        BillingRunChunk.objects.filter(run=run, step=step.name).order_by("seq").values_list("summary", flat=True)
    )
    return {**prepared.get(step.name, {}), **summaries_merge(parts), "chunks": len(parts)}


def chunk_claim(*, run_id, step: str, seq: int | None = None) -> BillingRunChunk | None:
    """The next open chunk of the step (or chunk ``seq``), pending or abandoned, under our lease."""
    now = timezone.now()
    with transaction.atomic():
        chunks = BillingRunChunk.objects.select_for_update(skip_locked=True).filter(run_id=run_id, step=step)
        if seq is not None:
            chunks = chunks.filter(seq=seq)
        chunk = (
            chunks.filter(
                Q(status=BillingRunChunkStatus.PENDING) | Q(status=BillingRunChunkStatus.RUNNING, lease_until__lt=now)
            )
            .order_by("seq")
            .first()
        )
        if chunk is None:
            return None
        chunk.status = BillingRunChunkStatus.RUNNING
        chunk.attempts += 1
        chunk.lease_until = now + lease()
        chunk.save(update_fields=["status", "attempts", "lease_until"])
    return chunk


def _chunk_done(chunk: BillingRunChunk, summary: dict) -> None:
    BillingRunChunk.objects.filter(pk=chunk.pk).update(
        status=BillingRunChunkStatus.DONE, summary=summary, finished_at=timezone.now(), lease_until=None
    )


def _chunk_give_up(chunk: BillingRunChunk) -> None:
    """A chunk that stopped its worker again and again (e.g. out of memory) is reported, not retried forever."""
    error = f"The chunk's worker stopped {chunk.attempts - 1} times while billing it; bill these contracts again."
    _chunk_done(
        chunk,
        {
            **summaries_merge([]),
            "errors": [{"contract": str(cid), "error": error} for cid in chunk.contract_ids],
        },
    )


def chunk_execute(chunk: BillingRunChunk, *, as_of: date, tenant=None) -> None:
    """Bill one claimed chunk; the chunk turns done in the same transaction as its invoices."""
    from billing.cycle import cycle_steps
    from billing.services.bulk import contracts_bill_chunk

    if chunk.attempts > CHUNK_MAX_ATTEMPTS:
        _chunk_give_up(chunk)
        return
    if chunk.step == "billing":
        contracts_bill_chunk(
            contract_ids=chunk.contract_ids,
            as_of=as_of,
            tenant=tenant,
            inside=lambda billed: _chunk_done(chunk, chunk_summary(billed)),
        )
        return
    (step,) = cycle_steps([chunk.step])
    summary = step.run(as_of=as_of, contract_ids=chunk.contract_ids)
    _chunk_done(chunk, summary)


def run_chunks_work(*, run_id, step: str, renew: BillingRun | None = None) -> int:
    """Claim and bill chunks of a run's step until none is left to claim; returns how many."""
    as_of = BillingRun.objects.values_list("as_of", flat=True).get(pk=run_id)
    tenant = current_tenant()
    done = 0
    while (chunk := chunk_claim(run_id=run_id, step=step)) is not None:
        chunk_execute(chunk, as_of=as_of, tenant=tenant)
        done += 1
        if renew is not None:
            _renew(renew)
    return done


# --------------------------------------------------------------------------- the beat's runs


def beat_cycle_needed(*, day: date) -> bool:
    """The hourly beat's cheap "anything due?" for one tenant (two small queries).

    The first beat of a local day runs the cycle; later ones find today's run and skip, unless it
    failed, is stuck, or a contract or its terms changed since it started (new facts are billed by
    the event flow as they arrive, so they need no cycle).
    """
    from contracts.models import Contract, ContractVersion

    last = (
        BillingRun.objects.filter(trigger="beat", as_of=day)
        .order_by("-created_at")
        .values("status", "created_at")
        .first()
    )
    if last is None or last["status"] == BillingRunStatus.FAILED:
        return True
    if last["status"] not in RUN_FINISHED:
        return last["created_at"] < timezone.now() - timedelta(hours=1)  # stuck: start over (idempotent)
    since = last["created_at"]
    changed = Contract.objects.filter(updated_at__gt=since).values("pk")[:1]
    amended = ContractVersion.objects.filter(created_at__gt=since).values("pk")[:1]
    return Contract.objects.filter(Q(pk__in=changed) | Q(pk__in=amended)).exists()


def beat_cycle_steps_due(*, day: date) -> list:
    """The cycle steps the beat should run now: none when today's run stands (``beat_cycle_needed``)
    or when no step has anything due (one query over every step's ``due`` rows)."""
    from revexos.cycle import cycle_steps_due

    return cycle_steps_due(as_of=day) if beat_cycle_needed(day=day) else []


def beat_run_start(*, day: date) -> BillingRun:
    now = timezone.now()
    return BillingRun.objects.create(
        as_of=day, trigger="beat", status=BillingRunStatus.RUNNING, started_at=now, attempts=1
    )


def beat_step_record(
    run: BillingRun, *, step: str, summary: dict, contract_ids: list[int] | None = None, chunk_size: int = 0
) -> list[BillingRunChunk]:
    """A step done inline (its summary), or a per-contract step split into chunk rows."""
    chunks: list[BillingRunChunk] = []
    with transaction.atomic():
        locked = BillingRun.objects.select_for_update().get(pk=run.pk)
        locked.summary = {**locked.summary, step: summary}
        fields = ["summary"]
        if contract_ids is None:
            locked.steps_done = [*locked.steps_done, step]
            locked.errors_count += len(summary.get("errors", []))
            fields += ["steps_done", "errors_count"]
        else:
            chunks = BillingRunChunk.objects.bulk_create(
                [
                    BillingRunChunk(run=run, step=step, seq=n, contract_ids=contract_ids[start : start + chunk_size])
                    for n, start in enumerate(range(0, len(contract_ids), chunk_size))
                ]
            )
        locked.save(update_fields=fields)
    return chunks


def beat_run_finish_if_done(*, run_id, dispatched: bool = False) -> bool:
    """The last of the beat task and its chunks closes the run: chunk summaries merged per step,
    errors counted. (``dispatched``: the beat task has recorded every step.)"""
    with transaction.atomic():
        run = BillingRun.objects.select_for_update().get(pk=run_id)
        if dispatched:
            run.summary = {**run.summary, "_dispatched": True}
            run.save(update_fields=["summary"])
        if run.status in RUN_FINISHED or not run.summary.get("_dispatched"):
            return False
        if BillingRunChunk.objects.filter(run=run).exclude(status=BillingRunChunkStatus.DONE).exists():
            return False
        by_step: dict[str, list[dict]] = {}
        for step, summary in BillingRunChunk.objects.filter(run=run).order_by("seq").values_list("step", "summary"):
            by_step.setdefault(step, []).append(summary)
        for step, parts in by_step.items():
            merged = {**run.summary.get(step, {}), **summaries_merge(parts), "chunks": len(parts)}
            run.summary[step] = merged
            run.errors_count += len(merged["errors"])
            run.steps_done = [*run.steps_done, step]
        run.status = BillingRunStatus.COMPLETED_WITH_ERRORS if run.errors_count else BillingRunStatus.SUCCEEDED
        run.finished_at = timezone.now()
        run.save(update_fields=["summary", "errors_count", "steps_done", "status", "finished_at"])
    return True


# --------------------------------------------------------------------------- the sweep


def runs_sweep(*, now=None) -> dict:
    """Runs nobody is executing: queued and never picked up (the broker was down when they were
    posted), or running with an expired lease (their worker died). Each is sent again; its task
    takes it over and resumes it. Also re-sends the chunk tasks of beat runs that were lost."""
    now = now or timezone.now()
    grace = timedelta(seconds=settings.BILLING_RUN_QUEUED_GRACE_SECONDS)
    stale = list(
        BillingRun.objects.filter(
            Q(status=BillingRunStatus.QUEUED, created_at__lt=now - grace)
            | Q(status=BillingRunStatus.RUNNING, lease_until__lt=now)
        ).values_list("pk", flat=True)
    )
    for run_id in stale:
        task_enqueue_on_commit(RUN_EXECUTE_TASK, run_id=str(run_id))
    lost = list(
        BillingRunChunk.objects.filter(run__trigger="beat", run__status=BillingRunStatus.RUNNING)
        .filter(
            Q(status=BillingRunChunkStatus.PENDING, created_at__lt=now - grace)
            | Q(status=BillingRunChunkStatus.RUNNING, lease_until__lt=now)
        )
        .values_list("run_id", "step", "seq", "contract_ids", "run__as_of")
    )
    for run_id, step, seq, contract_ids, as_of in lost:
        task_enqueue_on_commit(
            CHUNK_TASK,
            step=step,
            contract_ids=contract_ids,
            as_of=as_of.isoformat(),
            run_id=str(run_id),
            seq=seq,
        )
    return {"runs_resent": len(stale), "chunks_resent": len(lost)}
