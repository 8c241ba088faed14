"""Harvest and Toggl time imports: preview naming every bad row, all or nothing, never twice;
the API as DESIGN.md §5.1; the scheduled Harvest v2 pull against a stand-in."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from billing.models import InvoiceLine, TimeEntry
from billing.services.context import tenant_today
from billing.tests.builders import contract_with, unique
from integrations.models import Connection, TimeImport
from integrations.services.connections import connection_create, mapping_set
from integrations.services.time_imports import TimeImportRejected, harvest_pull, time_import_commit, time_import_preview
from integrations.tests.standins import harvest_stand_in
from integrations.tests.test_pure import HARVEST

HEADER = HARVEST.splitlines()[0]


def tm_contract(number=None):
    today = tenant_today()
    return contract_with(
        {
            "kind": "time_and_materials",
            "description": "Engineering services",
            "frequency": "",
            "timing": "",
            "amount": None,
        },
        start=today - timedelta(days=120),
        end=today + timedelta(days=200),
        number=number or unique("TM"),
    )


@pytest.fixture
def contract(in_tenant_a):
    from contracts.models import RateCardEntry

    contract = tm_contract()
    line = contract.versions.get().price_lines.get()
    RateCardEntry.objects.create(price_line=line, role="Engineer", hourly_rate=Decimal("150.00"))
    return contract


def harvest_csv(contract, rows: list[tuple]) -> str:
    out = [HEADER]
    for day, task, hours, billable, person in rows:
        first, last = person.split(" ")
        out.append(
            f"{day},Globex,Data platform,{contract.number},{task},Work on {task},{hours},{hours},{billable},No,Yes,{first},{last},,Yes,150,,80,,US Dollar - USD,"
        )
    return "\n".join(out) + "\n"


def day(n):
    return (tenant_today() - timedelta(days=n)).isoformat()


def test_a_harvest_csv_with_one_bad_row_imports_nothing_and_names_the_row(contract):
    text = harvest_csv(
        contract,
        [
            (day(10), "Engineer", "6.5", "Yes", "Ada Lovelace"),
            (day(9), "Engineer", "-2", "Yes", "Ada Lovelace"),
            (day(8), "Engineer", "3", "Yes", "Alan Turing"),
        ],
    )
    preview = time_import_preview(text=text, format="harvest")
    assert not preview.ok and [(r.line, r.errors) for r in preview.bad_rows] == [
        (3, ["Hours must be more than 0 (got -2)."])
    ]
    with pytest.raises(TimeImportRejected):
        time_import_commit(text=text, format="harvest")
    assert not TimeEntry.objects.filter(contract=contract).exists() and not TimeImport.objects.exists()


def test_a_task_that_is_not_a_rate_card_role_is_named_and_a_mapping_fixes_it(contract):
    text = harvest_csv(contract, [(day(5), "Programming", "2", "Yes", "Ada Lovelace")])
    (bad,) = time_import_preview(text=text, format="harvest").bad_rows
    assert "Task “Programming” is not a role on the rate card" in bad.errors[0]
    harvest, _ = connection_create(data={"source": "harvest"})
    mapping_set(connection=harvest, kind="task", external="Programming", value="Engineer")
    assert time_import_preview(text=text, format="harvest").ok


def test_the_same_file_twice_and_an_overlapping_export_give_the_hours_once(contract):
    rows = [
        (day(10), "Engineer", "6.5", "Yes", "Ada Lovelace"),
        (day(10), "Engineer", "6.5", "Yes", "Ada Lovelace"),
        (day(9), "Engineer", "1", "No", "Alan Turing"),
    ]
    first = time_import_commit(text=harvest_csv(contract, rows), format="harvest", filename="may.csv")
    assert (first.created, first.duplicates, first.hours, first.billable_hours) == (
        3,
        0,
        Decimal("14.00"),
        Decimal("13.00"),
    )
    again = time_import_commit(text=harvest_csv(contract, rows), format="harvest")
    assert (again.created, again.duplicates) == (0, 3)
    overlapping = time_import_commit(
        text=harvest_csv(contract, [*rows, (day(8), "Engineer", "2", "Yes", "Ada Lovelace")]), format="harvest"
    )
    assert (overlapping.created, overlapping.duplicates) == (1, 3)
    entries = TimeEntry.objects.filter(contract=contract)
    assert sum(e.hours for e in entries) == Decimal("16") and entries.filter(billable=False).count() == 1


def test_the_api_previews_with_dry_run_commits_once_and_answers_bad_rows_in_the_error_shape(api, contract):
    good = harvest_csv(contract, [(day(4), "Engineer", "4", "Yes", "Ada Lovelace")])
    dry = api.post("/api/v1/time-imports?format=harvest&dry_run=1", good, content_type="text/csv")
    assert dry.status_code == 200 and dry.json()["new"] == 1 and dry.json()["dry_run"] is True
    assert not TimeEntry.objects.filter(contract=contract).exists()
    done = api.post("/api/v1/time-imports?format=harvest", good, content_type="text/csv")
    assert done.status_code == 201 and (done.json()["new"], done.json()["hours"]) == (1, "4.00")
    again = api.post("/api/v1/time-imports?format=harvest", good, content_type="text/csv")
    assert again.status_code == 201 and (again.json()["new"], again.json()["duplicates"]) == (0, 1)
    bad = api.post("/api/v1/time-imports?format=harvest", good.replace(",4,4,", ",x,4,"), content_type="text/csv")
    assert bad.status_code == 422 and bad.json()["error"]["fields"] == {
        "line 2": ["Hours 'x' is not a number of hours."]
    }
    # A body in a media type the endpoint does not document is refused before it is read.
    assert api.post("/api/v1/time-imports?format=harvest", b"{}", content_type="application/json").status_code == 415
    assert api.post("/api/v1/time-imports?format=clockify", good, content_type="text/csv").status_code == 422
    assert api.post("/api/v1/time-imports?format=harvest", b"\xff\xfe", content_type="text/csv").status_code == 422
    assert TimeEntry.objects.filter(contract=contract).count() == 1


def test_imported_hours_are_billed_on_the_next_run(contract):
    from billing.services.runs import billing_run

    start = tenant_today().replace(day=1) - timedelta(days=1)
    start = start.replace(day=1)
    time_import_commit(
        text=harvest_csv(contract, [(start.isoformat(), "Engineer", "8", "Yes", "Ada Lovelace")]), format="harvest"
    )
    billing_run(as_of=tenant_today(), contract_ids=[contract.pk])
    line = InvoiceLine.objects.get(contract=contract, kind="time_and_materials")
    assert line.amount == Decimal("1200.00")


def test_the_scheduled_harvest_pull_imports_new_entries_once(contract):
    entry = {
        "id": 636709355,
        "spent_date": day(3),
        "hours": 2.5,
        "rounded_hours": 2.5,
        "notes": "Pipeline",
        "is_locked": False,
        "is_running": False,
        "billable": True,
        "billable_rate": 150.0,
        "user": {"id": 1782959, "name": "Kim Allen"},
        "client": {"id": 5735774, "name": "Globex", "currency": "USD"},
        "project": {"id": 14307913, "name": "Data platform", "code": contract.number},
        "task": {"id": 8083365, "name": "Engineer"},
        "created_at": "2026-05-07T10:00:00Z",
        "updated_at": "2026-05-07T10:00:00Z",
    }
    with harvest_stand_in(pages=[[entry], [dict(entry, id=636709356, hours=1.0)]]) as server:
        connection, _ = connection_create(
            data={"source": "harvest", "api_token": "harvest-token", "account_id": "123456", "api_base": server.url}
        )
        record = harvest_pull(connection=connection)
        assert record is not None and record.created == 2 and record.format == "harvest_api"
        assert harvest_pull(connection=Connection.objects.get(pk=connection.pk)) is None  # nothing new
        (_, path, headers) = server.requests[0]
        assert (
            path == "/v2/time_entries"
            and headers["Harvest-Account-Id"] == "123456"
            and headers["Authorization"] == "Bearer harvest-token"
        )
    assert set(TimeEntry.objects.filter(contract=contract).values_list("external_id", flat=True)) == {
        "harvest:636709355",
        "harvest:636709356",
    }
    connection.refresh_from_db()
    assert connection.last_pull_at is not None and connection.last_pull_error == ""


def test_finance_previews_and_commits_on_the_page_and_sees_the_history(contract, in_tenant_a):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from tests.helpers import client_for

    finance = client_for(in_tenant_a, email=in_tenant_a.users["finance"])
    text = harvest_csv(contract, [(day(6), "Engineer", "3", "Yes", "Ada Lovelace")])
    upload = SimpleUploadedFile("harvest.csv", text.encode(), content_type="text/csv")
    preview = finance.post("/integrations/time-imports/", {"format": "harvest", "action": "preview", "file": upload})
    assert preview.status_code == 200 and "Ready to import" in preview.content.decode()
    payload = preview.context["payload"]
    done = finance.post(
        "/integrations/time-imports/",
        {"format": "harvest", "action": "commit", "payload": payload, "filename": "harvest.csv"},
        follow=True,
    )
    page = done.content.decode()
    assert "Imported 1 time entry (3.00 h)" in page and "harvest.csv" in page and "Priya" not in page
    time_import_commit(text=harvest_csv(contract, [(day(7), "Engineer", "1", "Yes", "Ada Lovelace")]), format="harvest")
    assert ">API<" in finance.get("/integrations/time-imports/").content.decode()
    bad = finance.post(
        "/integrations/time-imports/",
        {
            "format": "harvest",
            "action": "preview",
            "file": SimpleUploadedFile("x.csv", text.replace(",3,3,", ",0,0,").encode()),
        },
    )
    assert bad.status_code == 400 and "Hours must be more than 0" in bad.content.decode()


def test_a_toggl_export_imports_by_project_with_a_client_mapping(contract, in_tenant_a):
    toggl, _ = connection_create(data={"source": "toggl"})
    mapping_set(connection=toggl, kind="project", external="Globex", contract_ref=contract.number)
    mapping_set(connection=toggl, kind="person", external="grace@example.com", value="Grace Hopper")
    text = (
        "User,Email,Client,Project,Task,Description,Billable,Start date,Start time,End date,End time,Duration,Tags,Amount (USD)\n"
        f"grace@example.com,grace@example.com,Globex,Website,Engineer,Compiler,Yes,{day(3)},09:00:00,{day(3)},10:30:00,01:30:00,,225.00\n"
    )
    record = time_import_commit(text=text, format="toggl")
    assert record.created == 1 and record.hours == Decimal("1.50")
    entry = TimeEntry.objects.get(contract=contract)
    assert entry.person == "Grace Hopper" and entry.role == "Engineer" and entry.external_id.startswith("toggl:fp:")
