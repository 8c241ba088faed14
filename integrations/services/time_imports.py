"""Hours from time trackers → time entries (Harvest and Toggl CSV exports, the Harvest v2 API pull).

The file is read by the pure parsers in ``integrations.timecsv``; each row is then mapped with the
connection's mappings (DB reads only) and checked by the same ingestion the API uses
(``billing.services.ingestion.time_entries_ingest``): a preview names every bad row, a commit writes
all rows or none. Ids: ``TimeRow.external_id`` (the tracker's id, else a fingerprint with its
occurrence), so the same or an overlapping export never adds the same hours twice.

Mapping, per connection (``integrations.Mapping``), with defaults when none is set:
- project → contract: a mapping on Harvest's Project Code, Project or Client (Toggl: Project or
  Client); by default a Project Code (Toggl: Project) equal to a contract number is that contract;
- task → rate-card role: a mapping, else a task equal to a role on the contract's rate card;
- person → name: a mapping, else the name as exported.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from billing.models import TimeEntry
from billing.services.ingestion import MAX_BATCH, time_entries_ingest
from integrations.models import Connection, Mapping, MappingKind, Source, TimeImport, TimeImportFormat
from integrations.timecsv import ParsedTime, TimeRow, time_csv_parse, time_rows_from_harvest_api

CENTS = Decimal("0.01")  # the history shows hours to the hundredth


@dataclass
class RowCheck:
    line: int
    row: TimeRow | None
    contract: str = ""
    role: str = ""
    person: str = ""
    duplicate: bool = False
    errors: list[str] = field(default_factory=list)


@dataclass
class TimeImportPreview:
    format: str
    rows: list[RowCheck] = field(default_factory=list)
    file_errors: list[str] = field(default_factory=list)

    @property
    def bad_rows(self) -> list[RowCheck]:
        return [r for r in self.rows if r.errors]

    @property
    def ok(self) -> bool:
        return not self.file_errors and not self.bad_rows and bool(self.rows)

    @property
    def new_rows(self) -> list[RowCheck]:
        return [r for r in self.rows if not r.errors and not r.duplicate]

    @property
    def duplicates(self) -> int:
        return sum(1 for r in self.rows if r.duplicate and not r.errors)

    @property
    def hours(self) -> Decimal:
        return sum((r.row.hours for r in self.new_rows), Decimal(0))

    @property
    def billable_hours(self) -> Decimal:
        return sum((r.row.hours for r in self.new_rows if r.row.billable), Decimal(0))

    @property
    def contracts(self) -> list[str]:
        return sorted({r.contract for r in self.new_rows})

    def as_dict(self) -> dict:
        return {
            "format": self.format,
            "rows": len(self.rows),
            "new": len(self.new_rows),
            "duplicates": self.duplicates,
            "hours": str(self.hours),
            "billable_hours": str(self.billable_hours),
            "contracts": self.contracts,
            "errors": [{"line": r.line, "messages": r.errors} for r in self.bad_rows],
            "file_errors": self.file_errors,
        }


class TimeImportRejected(Exception):
    def __init__(self, preview: TimeImportPreview) -> None:
        count = len(preview.bad_rows)
        super().__init__(
            "; ".join(preview.file_errors) or f"{count} bad row{'s' if count != 1 else ''}; nothing was imported."
        )
        self.preview = preview


def _connection(format: str) -> Connection | None:
    source = Source.HARVEST if format.startswith("harvest") else Source.TOGGL
    return Connection.objects.filter(source=source).first()


def _mappings(connection: Connection | None) -> dict[str, dict[str, Mapping]]:
    out: dict[str, dict[str, Mapping]] = {k: {} for k in MappingKind.values}
    if connection is not None:
        for m in Mapping.objects.filter(connection=connection).select_related("contract"):
            out[m.kind][m.external.lower()] = m
    return out


def _rate_card_roles(contract_ids: set[int]) -> tuple[dict[int, set[str]], set[int]]:
    """Roles on each contract's rate cards (any version), and the contracts that bill time at a rate card."""
    from contracts.models import RateCardEntry

    roles: dict[int, set[str]] = {}
    for contract_id, role in RateCardEntry.objects.filter(
        price_line__version__contract_id__in=contract_ids
    ).values_list("price_line__version__contract_id", "role"):
        roles.setdefault(contract_id, set()).add(role)
    return roles, set(roles)


def _check(parsed: ParsedTime, *, connection: Connection | None) -> TimeImportPreview:
    from contracts.models import Contract

    preview = TimeImportPreview(format=parsed.format, file_errors=list(parsed.file_errors))
    if parsed.file_errors:
        return preview
    maps = _mappings(connection)
    candidates = {r.project_code for r in parsed.rows} | {r.project for r in parsed.rows}
    by_number = {c.number: c for c in Contract.objects.filter(number__in=[c for c in candidates if c])}
    mapped_ids = {m.contract_id for m in maps[MappingKind.PROJECT].values()}
    roles, rate_card_contracts = _rate_card_roles({c.pk for c in by_number.values()} | mapped_ids)
    existing = set(
        TimeEntry.objects.filter(external_id__in=[r.external_id for r in parsed.rows]).values_list(
            "external_id", flat=True
        )
    )
    checks = [RowCheck(line=e.line, row=None, errors=[e.message]) for e in parsed.errors]
    for row in parsed.rows:
        check = RowCheck(line=row.line, row=row, duplicate=row.external_id in existing)
        contract = None
        for key in (row.project_code, row.project, row.client):
            mapping = maps[MappingKind.PROJECT].get(key.lower()) if key else None
            if mapping is not None:
                contract = mapping.contract
                break
        if contract is None:
            contract = by_number.get(row.project_code) or by_number.get(row.project)
        if contract is None:
            names = " / ".join(v for v in (row.client, row.project, row.project_code) if v) or "(no project)"
            where = "Project Code" if parsed.format == "harvest" else "Project"
            check.errors.append(
                f"No contract for {names}: set the {where} to a contract number, or map the project in Integrations."
            )
        else:
            check.contract = contract.number
            task_map = maps[MappingKind.TASK].get(row.task.lower()) if row.task else None
            role = task_map.value if task_map else row.task
            contract_roles = roles.get(contract.pk, set())
            if contract.pk in rate_card_contracts and row.billable and role not in contract_roles:
                check.errors.append(
                    f"Task “{row.task or '(none)'}” is not a role on the rate card of {contract.number} "
                    f"({', '.join(sorted(contract_roles))}); rename the task or map it to a role in Integrations."
                )
            check.role = (role or "Unspecified")[:100]
        person_map = maps[MappingKind.PERSON].get(row.person.lower())
        check.person = (person_map.value if person_map else row.person)[:200]
        checks.append(check)
    checks.sort(key=lambda c: c.line)
    preview.rows = checks
    if not preview.bad_rows:
        _ingestion_check(preview)
    return preview


def _entries(checks: list[RowCheck]) -> list[dict]:
    return [
        {
            "external_id": c.row.external_id,
            "contract": c.contract,
            "person": c.person,
            "role": c.role,
            "date": c.row.work_date.isoformat(),
            "hours": str(c.row.hours),
            "billable": c.row.billable,
            "description": c.row.notes[:500],
        }
        for c in checks
    ]


def _ingestion_check(preview: TimeImportPreview) -> None:
    """Run the API's own validation over the new rows without keeping anything (one rolled-back
    savepoint), so a row fails here with the message the API would give."""
    todo = [c for c in preview.rows if not c.duplicate]
    for start in range(0, len(todo), MAX_BATCH):
        chunk = todo[start : start + MAX_BATCH]
        try:
            with transaction.atomic():
                time_entries_ingest(entries=_entries(chunk))
                transaction.set_rollback(True)
        except ValidationError as exc:
            for path, messages in exc.message_dict.items():
                parts = path.split(".")
                if len(parts) >= 2 and parts[0] == "entries" and parts[1].isdigit():
                    chunk[int(parts[1])].errors.extend(
                        f"{parts[2] if len(parts) > 2 else 'row'}: {m}" for m in messages
                    )
                else:
                    preview.file_errors.extend(messages)


def time_import_preview(*, text: str, format: str) -> TimeImportPreview:
    return _check(time_csv_parse(text=text, format=format), connection=_connection(format))


def _commit(preview: TimeImportPreview, *, format: str, filename: str, sha256: str, user) -> TimeImport:
    created = 0
    todo = preview.new_rows
    for start in range(0, len(todo), MAX_BATCH):
        created += time_entries_ingest(entries=_entries(todo[start : start + MAX_BATCH])).accepted
    return TimeImport.objects.create(
        connection=_connection(format),
        format=format,
        filename=filename[:255],
        sha256=sha256,
        rows=len(preview.rows),
        created=created,
        duplicates=len(preview.rows) - created,
        hours=sum((c.row.hours for c in todo), Decimal(0)).quantize(CENTS),
        billable_hours=sum((c.row.hours for c in todo if c.row.billable), Decimal(0)).quantize(CENTS),
        contracts=preview.contracts,
        created_by=user,
    )


def time_import_commit(*, text: str, format: str, filename: str = "", user=None) -> TimeImport:
    """All rows or none; rows imported before are skipped (counted as duplicates)."""
    with transaction.atomic():
        preview = time_import_preview(text=text, format=format)
        if not preview.ok:
            raise TimeImportRejected(preview)
        return _commit(
            preview,
            format=format,
            filename=filename,
            sha256=hashlib.sha256(text.encode()).hexdigest(),
            user=user,
        )


def harvest_pull(*, connection: Connection) -> TimeImport | None:
    """The scheduled pull: time entries updated since the last pull, through the same checks.

    A bad entry holds the whole pull (nothing imported, the error kept on the connection) so hours
    are never half-taken; the next pull retries from the same point.
    """
    from integrations.clients import SourceApiError, harvest_time_entries_fetch

    started = timezone.now()
    since = connection.last_pull_at.isoformat() if connection.last_pull_at else None
    try:
        entries = harvest_time_entries_fetch(connection, updated_since=since)
        with transaction.atomic():
            preview = _check(time_rows_from_harvest_api(entries), connection=connection)
            if preview.rows and not preview.ok:
                raise TimeImportRejected(preview)
            record = None
            if preview.new_rows:
                record = _commit(preview, format=TimeImportFormat.HARVEST_API, filename="", sha256="", user=None)
            Connection.objects.filter(pk=connection.pk).update(last_pull_at=started, last_pull_error="")
            return record
    except (SourceApiError, TimeImportRejected) as exc:
        detail = str(exc)
        if isinstance(exc, TimeImportRejected):
            detail = "; ".join(f"{', '.join(r.errors)}" for r in exc.preview.bad_rows[:5]) or detail
        Connection.objects.filter(pk=connection.pk).update(last_pull_error=detail[:2000])
        return None


def harvest_pulls_due() -> dict:
    """Every Harvest connection with a token and account id pulls (a cycle step)."""
    pulled = failed = 0
    for connection in Connection.objects.filter(source=Source.HARVEST, is_active=True).exclude(api_token=""):
        if not connection.settings.get("account_id"):
            continue
        record = harvest_pull(connection=connection)
        connection.refresh_from_db(fields=["last_pull_error"])
        if connection.last_pull_error:
            failed += 1
        elif record is not None:
            pulled += record.created
    return {"harvest_entries_pulled": pulled, "harvest_pulls_failed": failed}
