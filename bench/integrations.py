"""Integration scenarios: accepting signed webhooks, processing the inbox, importing a Harvest export.

Run inside the bench tenant's schema after the contracts are generated (milestone references
``P-<contract id>``, rate cards with ``engineer``). The webhook scenario goes through Django's full
request stack in-process (middleware, tenant routing, signature over the raw body, inbox insert),
not over a socket, so it measures the endpoint's own cost.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import timedelta

from bench.scenarios import Row, _percentile


def _jira_body(key: str) -> bytes:
    return json.dumps(
        {
            "timestamp": int(time.time() * 1000),
            "webhookEvent": "jira:issue_updated",
            "issue": {
                "id": "1",
                "key": key,
                "fields": {
                    "summary": "Milestone",
                    "project": {"key": key.split("-")[0]},
                    "status": {"name": "Done", "statusCategory": {"key": "done"}},
                    "resolution": {"name": "Done"},
                },
            },
            "changelog": {
                "id": "1",
                "items": [
                    {"field": "resolution", "fieldId": "resolution", "from": None, "to": "10000", "toString": "Done"}
                ],
            },
        }
    ).encode()


def integrations_run(*, host: str, today, webhooks: int = 2000, csv_rows: int = 5000) -> list[Row]:
    from django.test import Client

    from billing.services import enqueue
    from contracts.models import Milestone, RateCardEntry
    from integrations.services.connections import connection_create
    from integrations.services.inbox import inbox_process_pending
    from integrations.services.time_imports import time_import_commit, time_import_preview
    from integrations.signatures import hmac_sha256_hex

    enqueue.task_send = lambda *a, **k: None  # the inbox sweep below is the worker
    rows: list[Row] = []
    _, secret = connection_create(data={"source": "jira"})
    refs = list(Milestone.objects.filter(contract__status="active").values_list("reference", flat=True)[:webhooks])
    refs += [f"UNKNOWN-{i}" for i in range(webhooks - len(refs))]
    client = Client(HTTP_HOST=host)
    latencies = []
    started = time.perf_counter()
    for ref in refs:
        body = _jira_body(ref)
        t = time.perf_counter()
        response = client.post(
            "/webhooks/jira/",
            body,
            content_type="application/json",
            HTTP_X_HUB_SIGNATURE="sha256=" + hmac_sha256_hex(secret, body),
            HTTP_X_ATLASSIAN_WEBHOOK_IDENTIFIER=str(uuid.uuid4()),
        )
        latencies.append((time.perf_counter() - t) * 1000)
        assert response.status_code == 200, response.content
    seconds = time.perf_counter() - started
    rows.append(
        Row(
            "integrations: signed Jira webhooks accepted (in-process)",
            len(refs),
            seconds,
            "requests",
            p50_ms=_percentile(latencies, 50),
            p99_ms=_percentile(latencies, 99),
            note="verify HMAC over the raw body, store in the inbox, answer",
        )
    )

    started = time.perf_counter()
    done = 0
    while True:
        result = inbox_process_pending(limit=500)
        if not result["inbox_processed"]:
            break
        done += result["inbox_processed"]
    rows.append(
        Row(
            "integrations: inbox events processed (milestone delivered)",
            done,
            time.perf_counter() - started,
            "events",
            note="lock row, match the milestone, ingest and process the delivery event, one transaction each",
        )
    )

    roles = dict(
        RateCardEntry.objects.filter(role="engineer", price_line__version__contract__status="active").values_list(
            "price_line__version__contract__number", "role"
        )[:500]
    )
    numbers = sorted(roles)
    if numbers:
        header = (
            "Date,Client,Project,Project Code,Task,Notes,Hours,Hours Rounded,Billable?,Invoiced?,Approved?,"
            "First Name,Last Name,Roles,Employee?,Billable Rate,Billable Amount,Cost Rate,Cost Amount,Currency,"
            "External Reference URL"
        )
        lines = [header]
        for i in range(csv_rows):
            day = today - timedelta(days=1 + i % 20)
            lines.append(
                f"{day.isoformat()},Client,Project,{numbers[i % len(numbers)]},engineer,Work {i},1.5,1.5,Yes,No,Yes,"
                f"Person,{i % 40},,Yes,150,225,80,120,USD,"
            )
        text = "\n".join(lines) + "\n"
        started = time.perf_counter()
        preview = time_import_preview(text=text, format="harvest")
        preview_seconds = time.perf_counter() - started
        note = f"preview {preview_seconds:.1f}s ({len(preview.bad_rows)} bad rows)"
        started = time.perf_counter()
        record = time_import_commit(text=text, format="harvest", filename="bench.csv") if preview.ok else None
        rows.append(
            Row(
                "integrations: Harvest CSV rows checked and imported",
                csv_rows,
                preview_seconds + (time.perf_counter() - started),
                "rows",
                note=note + (f"; {record.created:,} entries created" if record else "; not committed"),
            )
        )
    return rows
