"""The pure parts: signature schemes and the time-tracker CSV readers (no database)."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

from integrations import signatures
from integrations.sources import jira as jira_source
from integrations.tests.payloads import jira_done, jira_scope_change
from integrations.timecsv import time_csv_parse, time_rows_from_harvest_api

SECRET = "s3cret-s3cret-s3cret"
NOW = 1_780_000_000_000


class H(dict):
    def get(self, key, default=None):  # headers are case-insensitive
        return next((v for k, v in self.items() if k.lower() == key.lower()), default)


def test_jira_signature_accepts_the_right_secret_and_refuses_a_wrong_one_or_a_tampered_body():
    body = b'{"webhookEvent":"jira:issue_updated"}'
    good = H({"X-Hub-Signature": "sha256=" + signatures.hmac_sha256_hex(SECRET, body)})
    assert signatures.jira_verify(body=body, headers=good, secrets=[SECRET]) == "valid"
    assert signatures.jira_verify(body=body, headers=good, secrets=["another-secret-1234"]) == "invalid"
    assert signatures.jira_verify(body=body + b" ", headers=good, secrets=[SECRET]) == "invalid"
    assert signatures.jira_verify(body=body, headers=H(), secrets=[SECRET]) == "missing"
    # During a rotation's grace period the previous secret still passes.
    assert signatures.jira_verify(body=body, headers=good, secrets=["new-secret-new-secret", SECRET]) == "valid"


def test_linear_signature_and_its_sixty_second_window():
    def signed(at):
        body = json.dumps({"type": "Issue", "webhookTimestamp": at}).encode()
        return body, H({"Linear-Signature": signatures.hmac_sha256_hex(SECRET, body)})

    body, headers = signed(NOW - 30_000)
    assert signatures.linear_verify(body=body, headers=headers, secrets=[SECRET], now_ms=NOW) == "valid"
    body, headers = signed(NOW - 61_000)
    assert signatures.linear_verify(body=body, headers=headers, secrets=[SECRET], now_ms=NOW) == "stale"
    assert signatures.linear_verify(body=body, headers=headers, secrets=["wrong-wrong-wrong"], now_ms=NOW) == "invalid"


def test_asana_signature():
    body = b'{"events":[]}'
    headers = H({"X-Hook-Signature": signatures.hmac_sha256_hex(SECRET, body)})
    assert signatures.asana_verify(body=body, headers=headers, secrets=[SECRET]) == "valid"
    assert signatures.asana_verify(body=b'{"events":[1]}', headers=headers, secrets=[SECRET]) == "invalid"


def test_hubspot_v3_signs_method_uri_body_and_timestamp_within_five_minutes():
    uri = "https://acme.revexos.example/webhooks/hubspot/"
    body = b'[{"eventId":1}]'

    def headers(at):
        sig = signatures.hubspot_v3_signature(secret=SECRET, method="POST", uri=uri, body=body, timestamp=str(at))
        return H({"X-HubSpot-Signature-v3": sig, "X-HubSpot-Request-Timestamp": str(at)})

    verify = lambda h, **kw: signatures.hubspot_verify(  # noqa: E731
        body=kw.get("body", body), headers=h, secrets=[SECRET], method="POST", uris=[kw.get("uri", uri)], now_ms=NOW
    )
    assert verify(headers(NOW - 299_000)) == "valid"
    assert verify(headers(NOW - 301_000)) == "stale"
    assert verify(headers(NOW), uri=uri.replace("acme", "evil")) == "invalid"
    assert verify(headers(NOW), body=b"[]") == "invalid"


def test_jira_done_is_read_from_the_changelog_and_scope_changes_are_named():
    facts = jira_source.issue_facts(jira_done("PROJ-12"))
    assert facts.key == "PROJ-12" and facts.project == "PROJ" and facts.done and not facts.scope_changes
    facts = jira_source.issue_facts(jira_scope_change("PROJ-12"))
    assert not facts.done and facts.scope_changes == ("Story Points: 5 → 8",)


def test_the_captured_in_progress_transition_is_not_done():
    from integrations.tests.conftest import fixture_json

    facts = jira_source.issue_facts(fixture_json("jira/jira_issue_updated_status-changed.json"))
    assert facts.key == "INDEV-6" and not facts.done


HARVEST = (
    "Date,Client,Project,Project Code,Task,Notes,Hours,Hours Rounded,Billable?,Invoiced?,Approved?,"
    "First Name,Last Name,Roles,Employee?,Billable Rate,Billable Amount,Cost Rate,Cost Amount,Currency,External Reference URL\n"
    "2026-05-04,Globex,Data platform,C-100,Engineer,Pipeline work,6.5,6.5,Yes,No,Yes,Ada,Lovelace,,Yes,150,975,80,520,US Dollar - USD,\n"
    "2026-05-04,Globex,Data platform,C-100,Engineer,Pipeline work,6.5,6.5,Yes,No,Yes,Ada,Lovelace,,Yes,150,975,80,520,US Dollar - USD,\n"
    "2026-05-05,Globex,Data platform,C-100,Internal,Team meeting,1,1,No,No,Yes,Ada,Lovelace,,Yes,0,0,80,80,US Dollar - USD,\n"
)


def test_harvest_rows_get_stable_fingerprints_counted_by_occurrence():
    parsed = time_csv_parse(text=HARVEST, format="harvest")
    assert parsed.ok
    first, second, third = parsed.rows
    assert first.external_id.startswith("harvest:fp:") and first.external_id.endswith(":1")
    assert second.external_id == first.external_id[:-1] + "2"
    assert first.hours == Decimal("6.5") and first.billable and first.person == "Ada Lovelace"
    assert first.project_code == "C-100" and first.task == "Engineer" and first.work_date == date(2026, 5, 4)
    assert not third.billable
    # The same file again gives the same ids.
    assert [r.external_id for r in time_csv_parse(text=HARVEST, format="harvest").rows] == [
        r.external_id for r in parsed.rows
    ]


def test_every_bad_harvest_row_is_named_by_line():
    text = HARVEST.replace("6.5,6.5,Yes", "six,6.5,Yes", 1).replace("2026-05-05", "05/40/2026")
    parsed = time_csv_parse(text=text, format="harvest")
    assert not parsed.ok
    assert [(e.line, e.message) for e in parsed.errors] == [
        (2, "Hours 'six' is not a number of hours."),
        (4, "Date '05/40/2026' is not a date (YYYY-MM-DD)."),
    ]


def test_a_file_that_is_not_a_harvest_export_says_so():
    parsed = time_csv_parse(text="name,amount\nx,1\n", format="harvest")
    assert not parsed.ok and "does not look like a Harvest detailed time report" in parsed.file_errors[0]


def test_toggl_durations_become_decimal_hours():
    text = (
        "User,Email,Client,Project,Task,Description,Billable,Start date,Start time,End date,End time,Duration,Tags,Amount (USD)\n"
        "Grace Hopper,grace@example.com,Globex,C-100,Engineer,Compiler,Yes,2026-05-06,09:00:00,2026-05-06,10:20:00,01:20:00,,200.00\n"
    )
    (row,) = time_csv_parse(text=text, format="toggl").rows
    assert row.hours == Decimal("1.333333") and row.person == "Grace Hopper" and row.project == "C-100"


def test_harvest_api_entries_use_harvests_ids():
    # Shape from Harvest API v2 docs, "List all time entries".
    entries = [
        {
            "id": 636709355,
            "spent_date": "2026-05-07",
            "hours": 2.11,
            "notes": "Blog post",
            "is_running": False,
            "billable": True,
            "billable_rate": 100.0,
            "user": {"id": 1782959, "name": "Kim Allen"},
            "client": {"id": 5735774, "name": "ABC Corp"},
            "project": {"id": 14307913, "name": "Marketing Website", "code": "MW"},
            "task": {"id": 8083365, "name": "Graphic Design"},
        },
        {"id": 1, "spent_date": "2026-05-07", "hours": 0.5, "is_running": True, "user": {"id": 1, "name": "X"}},
    ]
    parsed = time_rows_from_harvest_api(entries)
    (row,) = parsed.rows
    assert row.external_id == "harvest:636709355" and row.hours == Decimal("2.11") and row.project_code == "MW"
