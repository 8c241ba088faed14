"""Processing an audit in a worker: sandbox, imports, the engine's shadow run, comparison, report.

Stages (each reported as progress on the Audit, in the owner's schema):

    1. a sandbox tenant (its own schema, no domain, no users) — ``tenant_sandbox_create``
    2. customers and contracts through the CSV imports (the same validation as a live import)
    3. time entries and usage through billing's ingestion (the same rules as the API)
    4. the invoice export through the history import (matched to contracts, lines and periods)
    5. the billing engine's shadow run as of the audit date, ignoring what was billed
       (``billing_shadow(assume_unbilled=True)``): what the contracts say should have been billed
    6. ``audits.rules.audit_compare`` and ``audits.report``; findings and report stored on the audit

A bad row anywhere fails the audit with file/row/column messages and drops the sandbox, so nothing
is ever half-imported. Re-running starts from an empty sandbox and the stored uploads; the findings
are sorted by rule, contract and period and carry no database ids, so the same files give the
same report.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django_tenants.utils import schema_context, tenant_context

from audits.models import Audit, AuditFinding, AuditStatus
from audits.rules import DiscountWindow, Invoiced, InvoiceTerms, Owed, audit_compare, expected_discount
from billing.history_formats import ExportProblem, ExportRejected, sniff_text
from billing.history_matching import obligation_key
from revexos.dates import current_tenant
from revexos.money import quantize

logger = logging.getLogger(__name__)
ZERO = Decimal(0)
INGEST_BATCH = 1000


class AuditInputError(Exception):
    def __init__(self, problems: list[ExportProblem]) -> None:
        super().__init__("; ".join(str(p) for p in problems[:3]))
        self.problems = problems


# --------------------------------------------------------------------------- the pipeline


def audit_process(*, audit_id) -> Audit:
    """Run one queued audit (safe to deliver twice: only a queued audit is claimed)."""
    owner = current_tenant()
    with transaction.atomic():
        audit = Audit.objects.select_for_update().filter(pk=audit_id).first()
        if audit is None or audit.status != AuditStatus.QUEUED:
            return audit
        audit.status, audit.started_at, audit.runs = AuditStatus.PROCESSING, timezone.now(), audit.runs + 1
        audit.save(update_fields=["status", "started_at", "runs"])
    progress = _Progress(owner.schema_name, audit.pk)
    sandbox = None
    try:
        progress(5, "Creating a private workspace for the audit")
        from revexos.tenancy.services.provisioning import tenant_sandbox_create, tenant_sandbox_drop

        if audit.sandbox_schema:
            tenant_sandbox_drop(schema_name=audit.sandbox_schema)
        sandbox = tenant_sandbox_create(owner=owner, label=f"Audit: {audit.name}", purge_after=audit.expires_at)
        Audit.objects.filter(pk=audit.pk).update(sandbox_schema=sandbox.schema_name)
        uploads = {
            kind: (entry["name"], default_storage.open(entry["path"]).read()) for kind, entry in audit.files.items()
        }
        with tenant_context(sandbox):
            result = _run_in_sandbox(audit, uploads, progress)
        progress(95, "Writing the report")
        _store(audit, result)
    except AuditInputError as exc:
        _fail(audit, [p.as_dict() for p in exc.problems], sandbox)
    except Exception as exc:  # a bug must not leave a half-made sandbox or a spinner forever
        logger.exception("audit %s failed", audit.pk)
        _fail(
            audit, [{"file": None, "row": None, "column": None, "message": f"Processing failed: {exc}"[:500]}], sandbox
        )
    audit.refresh_from_db()
    return audit


class _Progress:
    def __init__(self, schema: str, audit_id) -> None:
        self.schema, self.audit_id = schema, audit_id

    def __call__(self, percent: int, stage: str) -> None:
        with schema_context(self.schema):
            Audit.objects.filter(pk=self.audit_id).update(progress=percent, stage=stage[:200])


def _fail(audit: Audit, errors: list[dict], sandbox) -> None:
    from revexos.tenancy.services.provisioning import tenant_sandbox_drop

    if sandbox is not None:
        tenant_sandbox_drop(schema_name=sandbox.schema_name)
    Audit.objects.filter(pk=audit.pk).update(
        status=AuditStatus.FAILED,
        progress=100,
        stage="Stopped: fix the files and upload them again",
        errors=errors,
        report={},
        sandbox_schema="",
        finished_at=timezone.now(),
    )
    audit.findings.all().delete()


def _store(audit: Audit, result: dict) -> None:
    with transaction.atomic():
        audit.findings.all().delete()
        AuditFinding.objects.bulk_create(
            [
                AuditFinding(
                    audit=audit,
                    position=position,
                    rule=f.rule,
                    contract_number=f.contract_number,
                    customer=f.customer[:200],
                    title=f.title[:400],
                    period_start=f.period_start,
                    period_end=f.period_end,
                    amount=f.amount,
                    currency=f.currency,
                    key=f.key[:200],
                    evidence=_jsonable(f.evidence),
                )
                for position, f in enumerate(result["findings"], start=1)
            ]
        )
        Audit.objects.filter(pk=audit.pk).update(
            status=AuditStatus.READY,
            progress=100,
            stage="Ready",
            errors=[],
            report=_jsonable(result["report"]),
            finished_at=timezone.now(),
        )


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, date):
        return value.isoformat()
    return value


# --------------------------------------------------------------------------- inside the sandbox


def _text(kind: str, name: str, raw: bytes) -> str:
    try:
        return sniff_text(raw, f"{name}")
    except ExportRejected as exc:
        raise AuditInputError(exc.problems) from None


def _run_in_sandbox(audit: Audit, uploads: dict[str, tuple[str, bytes]], progress) -> dict:
    from billing.services.history import history_directory, history_import_commit
    from contracts.services.imports import ImportRejected, contracts_import_commit, customers_import_commit

    progress(15, "Importing customers")
    if "customers" not in uploads:
        uploads = {**uploads, "customers": ("customers (from the contracts)", _customers_derived(audit, uploads))}
    for kind, commit in (("customers", customers_import_commit), ("contracts", contracts_import_commit)):
        name, raw = uploads[kind]
        if kind == "contracts":
            progress(25, "Importing contracts, amendments and discounts")
        try:
            commit(text=_text(kind, name, raw))
        except ImportRejected as exc:
            raise AuditInputError(_import_problems(name, exc.preview)) from None
    directory = history_directory()
    counts = {"customers": _count("contracts.Customer"), "contracts": len(directory.contracts)}
    time_rows: dict[str, int] = {}
    if "time_entries" in uploads:
        progress(40, "Importing time entries")
        counts["time_entries"] = _time_entries_import(
            *uploads["time_entries"], directory=directory, rows_by_entry=time_rows
        )
    if "usage" in uploads:
        progress(50, "Importing usage")
        counts["usage_events"] = _usage_import(*uploads["usage"])
    progress(60, "Reading the invoice export and matching it to the contracts")
    name, raw = uploads["invoices"]
    try:
        batch = history_import_commit(
            raw=raw,
            file_name=name,
            date_format=audit.date_format or None,
            default_currency=audit.default_currency or None,
        )
    except ExportRejected as exc:
        raise AuditInputError(exc.problems) from None
    counts.update(invoices=batch.invoice_count, invoice_lines=batch.line_count, matched_lines=batch.matched_line_count)
    progress(75, "Billing the contracts as RevExOS would have")
    time_export = (uploads["time_entries"][0], time_rows) if time_rows else None
    return _compare(audit, counts, progress, time_export=time_export)


TIME_EVIDENCE_ROWS = 10


def _time_evidence(findings, file_name: str, rows_by_entry: dict[str, int]) -> None:
    """Hours never billed rest on the time export's rows: the period's billable entries of the
    contract, by file row (the first few; the finding's amount already counts them all)."""
    from billing.models import TimeEntry

    for f in findings:
        if f.rule != "L2" or f.period_start is None:
            continue
        entries = TimeEntry.objects.filter(
            contract_id=f.contract_id,
            billable=True,
            work_date__gte=f.period_start,
            work_date__lte=f.period_end or f.period_start,
        ).values_list("external_id", "work_date", "person", "role", "hours")
        placed = sorted(
            (rows_by_entry[ext], day, person, role, hours)
            for ext, day, person, role, hours in entries
            if ext in rows_by_entry
        )
        f.evidence = [
            *f.evidence,
            *(
                {
                    "source": "time",
                    "file": file_name,
                    "row": row,
                    "what": f"{day.isoformat()} · {person} · {role}",
                    "quantity": hours,
                    "amount": None,
                }
                for row, day, person, role, hours in placed[:TIME_EVIDENCE_ROWS]
            ),
        ]


def _customers_derived(audit: Audit, uploads: dict[str, tuple[str, bytes]]) -> bytes:
    """Without a customers file: one customer per ``customer`` of the contracts CSV, named as the
    invoices that quote its contracts' numbers name their contact (else by its reference)."""
    import csv
    import io

    from billing.history_formats import history_export_parse

    name, raw = uploads["contracts"]
    reader = csv.DictReader(io.StringIO(_text("contracts", name, raw), newline=""))
    refs: dict[str, str] = {}
    currency: dict[str, str] = {}
    current = ""
    for row in reader:
        ref = (row.get("customer") or "").strip()
        number = (row.get("number") or "").strip()
        if ref:
            current = ref
            refs.setdefault(number, ref)
            if row.get("currency"):
                currency.setdefault(ref, row["currency"].strip().upper())
        elif number and number not in refs and current:
            refs[number] = current
    names: dict[str, str] = {}
    try:
        parsed = history_export_parse(
            raw=uploads["invoices"][1],
            file_name=uploads["invoices"][0],
            date_format=audit.date_format or None,
            default_currency=audit.default_currency or None,
        )
    except ExportRejected:
        parsed = None
    for invoice in parsed.invoices if parsed else []:
        for number, ref in refs.items():
            if number and number in f"{invoice.reference} {' '.join(line.description for line in invoice.lines)}":
                names.setdefault(ref, invoice.contact)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["external_id", "legal_name", "currency"])
    for ref in dict.fromkeys(refs.values()):
        writer.writerow([ref, names.get(ref, ref), currency.get(ref, "")])
    return out.getvalue().encode()


def _count(model: str) -> int:
    from django.apps import apps

    return apps.get_model(model).objects.count()


def _import_problems(file_name: str, preview) -> list[ExportProblem]:
    problems = [ExportProblem(file_name, message) for message in preview.file_errors]
    for report in preview.bad_rows:
        for message in report.errors:
            column, sep, text = message.partition(": ")
            if sep and " " not in column:
                problems.append(ExportProblem(file_name, text, report.line, column))
            else:
                problems.append(ExportProblem(file_name, message, report.line))
    return problems[:50]


def _ingest_problems(
    file_name: str, exc: ValidationError, lines: list[int], columns: dict[str, str]
) -> list[ExportProblem]:
    problems = []
    for name, messages in exc.message_dict.items():
        parts = name.split(".")
        row = lines[int(parts[1])] if len(parts) > 1 and parts[1].isdigit() and int(parts[1]) < len(lines) else None
        column = columns.get(parts[-1], parts[-1]) if len(parts) > 2 else None
        problems.extend(ExportProblem(file_name, m, row, column) for m in messages)
    return problems[:50]


def _time_entries_import(name: str, raw: bytes, *, directory, rows_by_entry: dict[str, int]) -> int:
    """Ingest the time export; ``rows_by_entry`` learns each entry's file row (for the evidence)."""
    from audits.services.audits import time_format_detect
    from billing.history_matching import name_key
    from billing.services.ingestion import time_entries_ingest
    from integrations.timecsv import time_csv_parse

    text = _text("time_entries", name, raw)
    parsed = time_csv_parse(text=text, format=time_format_detect(text) or "harvest")
    problems = [ExportProblem(name, m) for m in parsed.file_errors] + [
        ExportProblem(name, e.message, e.line) for e in parsed.errors
    ]
    if problems:
        raise AuditInputError(problems[:50])
    by_customer = {}
    for key, customer_id in directory.customers.items():
        by_customer.setdefault(key, customer_id)
    entries, lines = [], []
    unplaced: list[ExportProblem] = []
    for row in parsed.rows:
        contract = None
        for text_ref in (row.project_code, row.project):
            if text_ref and (contract := directory.number_in(text_ref)):
                break
        if contract is None:
            customer_id = directory.customer_for(row.client) if row.client else None
            running = [c for c in directory.by_customer.get(customer_id, []) if c.runs_on(row.work_date)]
            tm = [c for c in running if any(line.kind in ("time_and_materials", "recurring") for line in c.lines)]
            contract = (tm or running)[0] if len(tm or running) == 1 else None
        if contract is None:
            unplaced.append(
                ExportProblem(
                    name,
                    f"No contract for client “{row.client}”, project “{row.project}”: put the contract number in the project code.",
                    row.line,
                    "Project Code",
                )
            )
            continue
        roles = {r for line in contract.lines for r in line.roles}
        role = (
            next((r for r in roles if name_key(r) in (name_key(row.task), name_key(row.notes))), None)
            or row.task
            or "time"
        )
        entries.append(
            {
                "external_id": row.external_id,
                "contract": contract.number,
                "person": row.person or "unknown",
                "role": role[:100],
                "date": row.work_date.isoformat(),
                "hours": format(row.hours, "f"),
                "billable": row.billable,
                "description": (row.notes or row.task)[:500],
            }
        )
        lines.append(row.line)
    if unplaced:
        raise AuditInputError(unplaced[:50])
    rows_by_entry.update({entry["external_id"]: line for entry, line in zip(entries, lines, strict=True)})
    for start in range(0, len(entries), INGEST_BATCH):
        try:
            time_entries_ingest(entries=entries[start : start + INGEST_BATCH])
        except ValidationError as exc:
            raise AuditInputError(
                _ingest_problems(name, exc, lines[start : start + INGEST_BATCH], {"date": "Date", "hours": "Hours"})
            ) from None
    return len(entries)


def _usage_import(name: str, raw: bytes) -> int:
    from audits.formats import usage_csv_parse
    from billing.services.ingestion import usage_events_ingest

    parsed = usage_csv_parse(text=_text("usage", name, raw), file_name=name)
    if parsed.problems:
        raise AuditInputError(parsed.problems)
    events = []
    for row in parsed.rows:
        event = {
            "transaction_id": row.transaction_id,
            "metric": row.metric,
            "quantity": format(row.quantity, "f"),
            "timestamp": row.timestamp.isoformat(),
        }
        event["contract" if row.contract else "customer"] = row.contract or row.customer
        if row.amount is not None:
            event["properties"] = {"amount": format(row.amount, "f")}
        events.append(event)
    lines = [row.line for row in parsed.rows]
    for start in range(0, len(events), INGEST_BATCH):
        try:
            usage_events_ingest(events=events[start : start + INGEST_BATCH])
        except ValidationError as exc:
            raise AuditInputError(_ingest_problems(name, exc, lines[start : start + INGEST_BATCH], {})) from None
    return len(events)


# --------------------------------------------------------------------------- comparison


def _compare(audit: Audit, counts: dict, progress, *, contract_ids: list[int] | None = None, time_export=None) -> dict:
    """What the contracts say against what was billed, as findings and the report's figures.
    ``contract_ids`` narrows it to some contracts (tests comparing with the real run);
    ``time_export`` is (file name, external id → file row) of the time export, for the evidence."""
    from audits import report as figures
    from audits.report import HistoryInvoice
    from billing.models_history import BILLED_EXTERNAL_STATUSES, ExternalInvoice, ExternalInvoiceLine
    from billing.selectors import contract_versions_many
    from billing.services.shadow import billing_shadow
    from contracts.models import Contract, PriceLine
    from discounts.models import Discount
    from revexos.schedule import version_in_force

    invoices = ExternalInvoice.objects.select_related("customer")
    contract_rows = Contract.objects.select_related("customer")
    if contract_ids is not None:
        invoices = invoices.filter(contract_id__in=contract_ids)
        contract_rows = contract_rows.filter(pk__in=contract_ids)
    invoices = list(invoices)
    first_invoice = min((i.issue_date for i in invoices), default=None)
    last_invoice = max((i.issue_date for i in invoices), default=None)
    as_of = audit.as_of or default_as_of(last_invoice) or timezone.localdate()
    history_from = audit.history_from or (first_invoice.replace(day=1) if first_invoice else None)
    contracts = {c.pk: c for c in contract_rows}
    versions = contract_versions_many(contract_ids=list(contracts))
    version_by_id = {v.pk: v for vs in versions.values() for v in vs}

    shadow = billing_shadow(contract_ids=list(contracts), as_of=as_of, since=history_from, assume_unbilled=True)
    progress(85, "Comparing what was billed with what the contracts say")

    line_words = dict(
        PriceLine.objects.filter(
            pk__in={ob.price_line_id for ob in shadow.obligations if ob.price_line_id}
        ).values_list("pk", "description")
    )
    owed_sum: dict[str, dict] = {}
    for ob in shadow.obligations:
        contract = contracts[ob.contract_id]
        key = obligation_key(ob.kind, ob.contract_id, ob.line_ref, ob.period_start)
        entry = owed_sum.setdefault(
            key,
            {
                "contract": contract,
                "kind": ob.kind,
                "line_ref": ob.line_ref,
                "description": _owed_description(ob, line_words),
                "currency": ob.currency,
                "amount": ZERO,
                "quantity": ZERO,
                "unit": ob.unit_amount,
                "period_start": ob.period_start,
                "period_end": ob.period_end,
                "on": ob.on,
                "version": version_by_id.get(ob.version_id),
            },
        )
        entry["amount"] += ob.amount
        entry["quantity"] += ob.quantity
    owed = []
    for key, e in owed_sum.items():
        version = e["version"]
        unit = e["unit"]
        if e["kind"] in ("time_and_materials", "usage", "overage") and e["quantity"] > 0:
            unit = (e["amount"] / e["quantity"]).quantize(Decimal("0.0001"))
        terms = f"v{version.version} from {version.effective_from.isoformat()}" if version else ""
        owed.append(
            Owed(
                key=key,
                contract_id=e["contract"].pk,
                contract_number=e["contract"].number,
                customer=e["contract"].customer.legal_name,
                kind=e["kind"],
                line_ref=e["line_ref"],
                description=e["description"],
                currency=e["currency"],
                amount=e["amount"],
                quantity=e["quantity"],
                unit_amount=unit,
                period_start=e["period_start"],
                period_end=e["period_end"],
                on=e["on"],
                terms=terms,
            )
        )

    lines = (
        ExternalInvoiceLine.objects.filter(invoice__status__in=BILLED_EXTERNAL_STATUSES, contract__isnull=False)
        .exclude(obligation_key="")
        .select_related("invoice")
    )
    if contract_ids is not None:
        lines = lines.filter(contract_id__in=contract_ids)
    invoiced = [
        Invoiced(
            key=line.obligation_key,
            invoice=line.invoice.number,
            row=line.source_row,
            issue_date=line.invoice.issue_date,
            description=line.description,
            currency=line.invoice.currency,
            quantity=line.quantity,
            unit_amount=line.unit_amount,
            gross=line.gross_amount,
            net=line.amount,
            credit_note=line.invoice.kind == "credit_note",
        )
        for line in lines
    ]
    windows = []
    for d in Discount.objects.exclude(status="revoked").filter(
        Q(contract_id__in=list(contracts)) | Q(customer_id__in={c.customer_id for c in contracts.values()})
    ):
        targets = (
            [d.contract_id] if d.contract_id else [c.pk for c in contracts.values() if c.customer_id == d.customer_id]
        )
        for contract_id in targets:
            windows.append(
                DiscountWindow(
                    contract_id=contract_id,
                    kind=d.kind,
                    value=d.value,
                    start=d.start_date,
                    end=d.end_date,
                    line_ref=d.line_ref,
                )
            )
    terms = []
    for invoice in invoices:
        if invoice.contract_id is None or invoice.status not in BILLED_EXTERNAL_STATUSES or invoice.kind != "invoice":
            continue
        contract = contracts[invoice.contract_id]
        version = version_in_force(versions.get(contract.pk, []), invoice.issue_date)
        if version is None:
            continue
        terms.append(
            InvoiceTerms(
                contract_id=contract.pk,
                contract_number=contract.number,
                customer=contract.customer.legal_name,
                invoice=invoice.number,
                row=invoice.source_row,
                issue_date=invoice.issue_date,
                currency=invoice.currency,
                total=invoice.total,
                payment_terms_days=invoice.payment_terms_days,
                reference=invoice.reference,
                contract_terms_days=version.payment_terms_days,
                contract_po=version.po_number,
                po_required=version.po_required,
            )
        )
    findings = audit_compare(owed=owed, invoiced=invoiced, discounts=windows, invoice_terms=terms)
    if time_export:
        _time_evidence(findings, *time_export)
    for f in findings:
        # Keys without database ids: a re-run in a new sandbox names the same finding the same way.
        f.key = f"{f.rule}:{f.contract_number}:{f.key.split(':', 2)[-1]}"

    # A fee or milestone takes the discount in force on the day it was invoiced (billing's rule, and
    # the L4 rule's): the month's "would have billed" then differs from "billed" only by findings.
    first_billed: dict[str, date] = {}
    for line in invoiced:
        if not line.credit_note and (line.key not in first_billed or line.issue_date < first_billed[line.key]):
            first_billed[line.key] = line.issue_date
    owed_by_month = [
        (
            o.period_start or o.on,
            o.currency,
            o.amount
            - quantize(
                expected_discount(o, windows, billed_on=None if o.period_start else first_billed.get(o.key)),
                o.currency,
            ),
        )
        for o in owed
        if (o.period_start or o.on)
    ]
    billed_by_month = []
    owed_keys = {o.key for o in owed}
    for line in lines:
        day = line.period_start or line.invoice.issue_date
        if line.obligation_key not in owed_keys and (line.period_end or day) >= as_of:
            # Billed ahead of when the contract bills it (March hours invoiced on 31 March, due on
            # 1 April): not yet owed on the audit date, so not set against that month's figure.
            continue
        billed_by_month.append(
            (day, line.invoice.currency, line.amount * (-1 if line.invoice.kind == "credit_note" else 1))
        )
    start = history_from or as_of.replace(day=1)
    sent = [i for i in invoices if i.status in BILLED_EXTERNAL_STATUSES]
    report = {
        "as_of": as_of,
        "history_from": start,
        "source": invoices[0].source if invoices else "",
        "counts": counts,
        **figures.summary(findings),
        "monthly": figures.monthly(owed=owed_by_month, billed=billed_by_month, start=start, end=as_of),
        "dso": figures.dso(
            [
                HistoryInvoice(
                    number=i.number,
                    customer=i.contact_name,
                    currency=i.currency,
                    issue_date=i.issue_date,
                    due_date=i.due_date,
                    total=i.total,
                    credit_note=i.kind == "credit_note",
                    amount_due=i.amount_due,
                    paid_on=i.paid_on,
                )
                for i in sent
            ],
            as_of=as_of,
        ),
        "unmatched": _unmatched(invoices),
        "skipped": [
            {"contract": s.contract_number, "why": s.skipped or s.error}
            for s in shadow.contracts.values()
            if s.skipped or s.error
        ],
        "clean_contracts": sorted({c.number for c in contracts.values()} - {f.contract_number for f in findings}),
    }
    return {"findings": findings, "report": report}


def default_as_of(last_invoice: date | None) -> date | None:
    """Compare up to the last full month the export covers: the last invoice's day when it closes its
    month, else the end of the month before (so this month's periods, not invoiced yet, are not judged)."""
    if last_invoice is None:
        return None
    if (last_invoice + timedelta(days=1)).day == 1:
        return last_invoice
    return last_invoice.replace(day=1) - timedelta(days=1)


def _owed_description(ob, line_words: dict[int, str]) -> str:
    """The price line's own words (the engine's line description adds the period, roles, proration)."""
    base = line_words.get(ob.price_line_id) or ob.description
    if ob.kind == "overage":
        return f"{base}: hours over the included hours"
    if ob.kind == "usage_minimum":
        return f"{base}: minimum commitment"
    return base


def _unmatched(invoices) -> list[dict]:
    rows = []
    for invoice in invoices:
        if invoice.contract_id is not None:
            continue
        rows.append(
            {
                "invoice": invoice.number,
                "row": invoice.source_row,
                "contact": invoice.contact_name,
                "issue_date": invoice.issue_date,
                "total": invoice.total,
                "currency": invoice.currency,
                "why": "No customer of that name"
                if invoice.customer_id is None
                else "The lines do not say which contract",
            }
        )
    return rows[:100]
