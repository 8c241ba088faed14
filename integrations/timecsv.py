"""Time-tracker exports read into plain time rows: pure (text in, rows and errors out; no ORM, no I/O).

Formats (UTF-8 CSV with a header row; column order free; extra columns ignored):

Harvest "Detailed time report" export — ``Date, Client, Project, Project Code, Task, Notes, Hours,
    Hours Rounded, Billable?, Invoiced?, Approved?, First Name, Last Name, Roles, Employee?,
    Billable Rate, Billable Amount, Cost Rate, Cost Amount, Currency, External Reference URL``.
    Dates ``YYYY-MM-DD`` (also ``MM/DD/YYYY`` and ``DD.MM.YYYY``); ``Hours`` decimal; ``Billable?``
    Yes/No. The export has no row id (an ``ID`` or ``Time Entry ID`` column is used when present).
Toggl Track "Detailed report" export — ``User, Email, Client, Project, Task, Description, Billable,
    Start date, Start time, End date, End time, Duration, Tags, Amount (…)``. ``Duration`` is
    ``H:MM:SS``; ``Billable`` Yes/No. An ``ID``/``Id`` column is used when present.

Every row becomes a :class:`TimeRow` with an ``external_id`` that makes re-importing safe: the
source's id where the export has one (``harvest:12345``), else a fingerprint of the row's content
with its occurrence count in the file (``harvest:fp:<sha>:1``, ``…:2`` for an identical second row),
so the same file or an overlapping export never yields new ids for hours already taken.

Other modules call :func:`time_csv_parse` (``format`` = ``harvest`` or ``toggl``) and
:func:`time_rows_from_harvest_api` for the Harvest v2 API's ``time_entries``.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

MAX_ROWS = 5000
MAX_BYTES = 5 * 1024 * 1024
MAX_HOURS = Decimal(24)
HOURS_PLACES = Decimal("0.000001")
FORMATS = ("harvest", "toggl")

HARVEST_REQUIRED = ("Date", "Hours")
HARVEST_PERSON = ("First Name", "Last Name")
TOGGL_REQUIRED = ("Start date", "Duration")


@dataclass(frozen=True)
class TimeRow:
    """One worked period as the tracker reported it (names as in the source, not yet mapped)."""

    line: int  # line number in the file (header = 1); 0 for API rows
    external_id: str
    work_date: date
    hours: Decimal
    billable: bool
    person: str
    email: str = ""
    client: str = ""
    project: str = ""
    project_code: str = ""
    task: str = ""
    notes: str = ""
    rate: Decimal | None = None  # the tracker's billable rate, where it exports one
    currency: str = ""


@dataclass(frozen=True)
class RowError:
    line: int
    message: str


@dataclass
class ParsedTime:
    format: str
    rows: list[TimeRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)  # bad rows, by line
    file_errors: list[str] = field(default_factory=list)  # problems with the file as a whole

    @property
    def ok(self) -> bool:
        return not self.errors and not self.file_errors and bool(self.rows)


def decode_csv(raw: bytes) -> str:
    """Bytes of an upload → text; raises ValueError with a message a person can act on."""
    if len(raw) > MAX_BYTES:
        raise ValueError("The file is larger than 5 MB; export a shorter date range.")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError("The file is not UTF-8 text; export it again as CSV (UTF-8).") from None


def _yes(value: str) -> bool | None:
    v = value.strip().lower()
    if v in ("yes", "y", "true", "1", "billable"):
        return True
    if v in ("no", "n", "false", "0", "non-billable", ""):
        return False
    return None


def _date(value: str) -> date | None:
    value = value.strip()
    for fmt in ("%Y-%m-%d", "%m/%d/%Y", "%d.%m.%Y", "%Y/%m/%d"):
        try:
            return datetime.strptime(value, fmt).date()  # noqa: DTZ007 - a calendar date, no time
        except ValueError:
            continue
    return None


def _decimal_hours(value: str) -> Decimal | None:
    try:
        number = Decimal(value.strip().replace(",", "."))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _duration_hours(value: str) -> Decimal | None:
    """Toggl's ``H:MM:SS`` (hours may exceed 24 in exports; the row check refuses that)."""
    parts = value.strip().split(":")
    if len(parts) not in (2, 3) or not all(p.isdigit() for p in parts):
        return _decimal_hours(value) if value.strip() and ":" not in value else None
    h, m, s = (int(p) for p in [*parts, "0"][:3])
    if m >= 60 or s >= 60:
        return None
    return (Decimal(h) + Decimal(m) / 60 + Decimal(s) / 3600).quantize(HOURS_PLACES)


def _sentence(problems: list[str]) -> str:
    text = "; ".join(problems)
    return text[:1].upper() + text[1:] + "."


def _plain(hours: Decimal) -> Decimal:
    """At most six places and no exponent: 10 stays 10, 1.50 becomes 1.5."""
    return Decimal(format(hours.quantize(HOURS_PLACES).normalize(), "f"))


def _fingerprint(source: str, parts: tuple[str, ...]) -> str:
    return hashlib.sha256(("\x1f".join((source, *parts))).encode()).hexdigest()[:32]


def _read(text: str) -> tuple[list[str], list[tuple[int, dict[str, str]]], list[str]]:
    if "\x00" in text:
        return [], [], ["This is not a CSV text file."]
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
        header = [h.strip() for h in (reader.fieldnames or [])]
        reader.fieldnames = header
        rows = []
        for row in reader:
            if reader.line_num > MAX_ROWS + 1:
                return header, [], [f"The file has more than {MAX_ROWS:,} rows; export a shorter date range."]
            if None in row:
                rows.append((reader.line_num, {"__extra__": "1"}))
                continue
            if not any((v or "").strip() for v in row.values()):
                continue
            rows.append((reader.line_num, {k: (v or "").strip() for k, v in row.items()}))
    except csv.Error as exc:
        return [], [], [f"The file is not valid CSV: {exc}."]
    if not header:
        return [], [], ["The file is empty; the first row must name the columns."]
    return header, rows, []


def _id_column(header: list[str]) -> str | None:
    for name in ("Time Entry ID", "Time entry ID", "ID", "Id", "id"):
        if name in header:
            return name
    return None


def time_csv_parse(*, text: str, format: str) -> ParsedTime:
    """Read a Harvest or Toggl export. Every bad row is named with its line; rows are returned even
    when some are bad, so a preview can show both (callers commit only when ``ok``)."""
    if format not in FORMATS:
        return ParsedTime(format=format, file_errors=[f"Unknown format {format!r}; use harvest or toggl."])
    header, rows, problems = _read(text)
    parsed = ParsedTime(format=format, file_errors=problems)
    if problems:
        return parsed
    required = HARVEST_REQUIRED if format == "harvest" else TOGGL_REQUIRED
    missing = [c for c in required if c not in header]
    if format == "harvest" and not ({"First Name", "Last Name"} & set(header) or "Person" in header):
        missing.append("First Name/Last Name")
    if format == "toggl" and not ({"User", "Email"} & set(header)):
        missing.append("User")
    if missing:
        expected = "a Harvest detailed time report" if format == "harvest" else "a Toggl Track detailed report"
        parsed.file_errors.append(
            f"Missing column(s) {', '.join(missing)}: this does not look like {expected} export "
            f"(its columns are {', '.join(header[:8])}{'…' if len(header) > 8 else ''})."
        )
        return parsed
    if not rows:
        parsed.file_errors.append("The file has a header but no rows.")
        return parsed
    id_col = _id_column(header)
    occurrences: Counter[str] = Counter()
    for line, row in rows:
        if "__extra__" in row:
            parsed.errors.append(RowError(line, "The row has more cells than the header has columns."))
            continue
        out = _harvest_row(line, row) if format == "harvest" else _toggl_row(line, row)
        if isinstance(out, RowError):
            parsed.errors.append(out)
            continue
        values, content = out
        source_id = row.get(id_col, "").strip() if id_col else ""
        if source_id:
            external_id = f"{format}:{source_id}"
        else:
            fp = _fingerprint(format, content)
            occurrences[fp] += 1
            external_id = f"{format}:fp:{fp}:{occurrences[fp]}"
        parsed.rows.append(TimeRow(line=line, external_id=external_id, **values))
    return parsed


def _problems_common(work_date: date | None, raw_date: str, hours: Decimal | None, raw_hours: str) -> list[str]:
    problems = []
    if work_date is None:
        problems.append(f"date {raw_date!r} is not a date (YYYY-MM-DD)")
    if hours is None:
        problems.append(f"hours {raw_hours!r} is not a number of hours")
    elif hours <= 0:
        problems.append(f"hours must be more than 0 (got {raw_hours})")
    elif hours > MAX_HOURS:
        problems.append(f"{raw_hours} hours is more than a day")
    return problems


def _harvest_row(line: int, row: dict[str, str]) -> tuple[dict[str, Any], tuple[str, ...]] | RowError:
    work_date = _date(row.get("Date", ""))
    hours = _decimal_hours(row.get("Hours", ""))
    person = row.get("Person") or " ".join(p for p in (row.get("First Name", ""), row.get("Last Name", "")) if p)
    problems = _problems_common(work_date, row.get("Date", ""), hours, row.get("Hours", ""))
    billable = _yes(row.get("Billable?", "Yes"))
    if billable is None:
        problems.append(f"Billable? must be Yes or No (got {row.get('Billable?')!r})")
    if not person:
        problems.append("the person (First Name, Last Name) is empty")
    rate = _decimal_hours(row["Billable Rate"]) if row.get("Billable Rate") else None
    if problems:
        return RowError(line, _sentence(problems))
    values = {
        "work_date": work_date,
        "hours": _plain(hours),
        "billable": bool(billable),
        "person": person,
        "client": row.get("Client", ""),
        "project": row.get("Project", ""),
        "project_code": row.get("Project Code", ""),
        "task": row.get("Task", ""),
        "notes": row.get("Notes", ""),
        "rate": rate,
        "currency": row.get("Currency", "")[:3].upper() if len(row.get("Currency", "")) == 3 else "",
    }
    content = (
        work_date.isoformat(),
        person.lower(),
        values["client"],
        values["project"],
        values["project_code"],
        values["task"],
        values["notes"],
        str(hours.normalize()),
        str(values["billable"]),
    )
    return values, content


def _toggl_row(line: int, row: dict[str, str]) -> tuple[dict[str, Any], tuple[str, ...]] | RowError:
    work_date = _date(row.get("Start date", ""))
    hours = _duration_hours(row.get("Duration", ""))
    person = row.get("User") or row.get("Email", "")
    problems = _problems_common(work_date, row.get("Start date", ""), hours, row.get("Duration", ""))
    if hours is None:
        problems[-1] = f"duration {row.get('Duration', '')!r} is not H:MM:SS"
    billable = _yes(row.get("Billable", "Yes"))
    if billable is None:
        problems.append(f"Billable must be Yes or No (got {row.get('Billable')!r})")
    if not person:
        problems.append("the user is empty")
    if problems:
        return RowError(line, _sentence(problems))
    values = {
        "work_date": work_date,
        "hours": _plain(hours),
        "billable": bool(billable),
        "person": person,
        "email": row.get("Email", ""),
        "client": row.get("Client", ""),
        "project": row.get("Project", ""),
        "task": row.get("Task", ""),
        "notes": row.get("Description", ""),
    }
    content = (
        work_date.isoformat(),
        row.get("Start time", ""),
        person.lower(),
        values["client"],
        values["project"],
        values["task"],
        values["notes"],
        row.get("Duration", ""),
        str(values["billable"]),
    )
    return values, content


def time_rows_from_harvest_api(entries: list[dict[str, Any]]) -> ParsedTime:
    """Harvest v2 ``GET /v2/time_entries`` items → rows (ids from the API: ``harvest:<id>``, the same
    ids a CSV with a ``Time Entry ID`` column gives). Running timers are skipped."""
    parsed = ParsedTime(format="harvest")
    for item in entries:
        if not isinstance(item, dict) or item.get("is_running"):
            continue
        entry_id = item.get("id")
        work_date = _date(str(item.get("spent_date", "")))
        try:
            hours = Decimal(str(item.get("hours")))
        except InvalidOperation:
            hours = None
        problems = _problems_common(work_date, str(item.get("spent_date")), hours, str(item.get("hours")))
        user = item.get("user") or {}
        if entry_id is None:
            problems.append("the entry has no id")
        if problems:
            parsed.errors.append(RowError(0, f"Harvest time entry {entry_id}: {'; '.join(problems)}."))
            continue
        project, client, task = item.get("project") or {}, item.get("client") or {}, item.get("task") or {}
        rate = item.get("billable_rate")
        parsed.rows.append(
            TimeRow(
                line=0,
                external_id=f"harvest:{entry_id}",
                work_date=work_date,
                hours=_plain(hours),
                billable=bool(item.get("billable", True)),
                person=str(user.get("name", "")) or f"Harvest user {user.get('id')}",
                client=str(client.get("name", "")),
                project=str(project.get("name", "")),
                project_code=str(project.get("code") or ""),
                task=str(task.get("name", "")),
                notes=str(item.get("notes") or "")[:500],
                rate=Decimal(str(rate)) if rate is not None else None,
            )
        )
    return parsed
