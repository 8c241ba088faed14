"""Done when (issue #4): through the public API alone, a contract with every price line kind is
billed over a year of simulated time — usage, hours, milestones, an amendment mid-year — and every
invoice matches a hand calculation.

The contract is DESIGN.md §5's: from 15 January to 31 December 2026, calendar-monthly,
PO required (PO-7781), 30 days' terms,
  L1 retainer 3,100.00/month in advance, 20 included hours, overage 150.00/h
  L2 milestone "Phase 1 go-live" 12,000.00 (PROJ-12)
  L3 time & materials, engineer 150.00/h, not-to-exceed 20,000.00
  L4 onboarding fixed fee 5,000.00 on 15 January
  L5 usage api_calls, graduated: 0–100 at 1.00, above at 0.50
Amendment from 1 July: retainer 3,500.00, engineer 160.00/h, PO-9000.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import time_machine
from django.test import Client

D = Decimal

# Usage per month (units) → graduated charge: first 100 at 1.00, the rest at 0.50.
USAGE = {1: 80, 2: 250, 3: 100, 4: 0, 5: 500, 6: 120, 7: 60, 8: 1000, 9: 90, 10: 200, 11: 10, 12: 300}
# Retainer hours (role consultant → counted against the 20 included hours) and T&M hours (engineer).
CONSULTANT_HOURS = {2: "26", 8: "22", 5: "12"}
ENGINEER_HOURS = {3: "10", 7: "20", 10: "100"}

# Hand calculation, invoice by invoice: (issue date, PO, [(kind, period start, amount)], total).
EXPECTED = [
    (
        date(2026, 1, 15),
        "PO-7781",
        [
            ("recurring", date(2026, 1, 15), "1700.00"),  # 17/31 × 3,100.00
            ("fixed_fee", None, "5000.00"),
        ],
        "6700.00",
    ),
    (
        date(2026, 2, 1),
        "PO-7781",
        [
            ("usage", date(2026, 1, 15), "80.00"),  # 80 × 1.00
            ("recurring", date(2026, 2, 1), "3100.00"),
        ],
        "3180.00",
    ),
    (
        date(2026, 3, 1),
        "PO-7781",
        [
            ("overage", date(2026, 2, 1), "900.00"),  # 26 h − 20 included = 6 h × 150.00
            ("usage", date(2026, 2, 1), "175.00"),  # 100 × 1.00 + 150 × 0.50
            ("recurring", date(2026, 3, 1), "3100.00"),
        ],
        "4175.00",
    ),
    (
        date(2026, 4, 1),
        "PO-7781",
        [
            ("usage", date(2026, 2, 1), "20.00"),  # 40 late February units: 290 → 195.00, 175.00 billed
            ("time_and_materials", date(2026, 3, 1), "1500.00"),  # 10 h × 150.00
            ("usage", date(2026, 3, 1), "100.00"),
            ("recurring", date(2026, 4, 1), "3100.00"),
        ],
        "4720.00",
    ),
    (
        date(2026, 5, 1),
        "PO-7781",
        [
            ("recurring", date(2026, 5, 1), "3100.00"),  # April: no usage, nothing to bill
        ],
        "3100.00",
    ),
    (
        date(2026, 6, 1),
        "PO-7781",
        [
            ("milestone", None, "12000.00"),  # delivered 20 May (webhook), billed by the next run
            ("usage", date(2026, 5, 1), "300.00"),  # 100 + 400 × 0.50; 12 consultant hours are within the 20
            ("recurring", date(2026, 6, 1), "3100.00"),
        ],
        "15400.00",
    ),
    # 1 July: June's usage is billed under June's terms (PO-7781), July's retainer under the amendment.
    (date(2026, 7, 1), "PO-7781", [("usage", date(2026, 6, 1), "110.00")], "110.00"),
    (date(2026, 7, 1), "PO-9000", [("recurring", date(2026, 7, 1), "3500.00")], "3500.00"),
    (
        date(2026, 8, 1),
        "PO-9000",
        [
            ("time_and_materials", date(2026, 7, 1), "3200.00"),  # 20 h × 160.00 (amended rate)
            ("usage", date(2026, 7, 1), "60.00"),
            ("recurring", date(2026, 8, 1), "3500.00"),
        ],
        "6760.00",
    ),
    (
        date(2026, 9, 1),
        "PO-9000",
        [
            ("overage", date(2026, 8, 1), "300.00"),  # 22 h − 20 = 2 h × 150.00
            ("usage", date(2026, 8, 1), "550.00"),  # 100 + 900 × 0.50
            ("recurring", date(2026, 9, 1), "3500.00"),
        ],
        "4350.00",
    ),
    (
        date(2026, 10, 1),
        "PO-9000",
        [
            ("usage", date(2026, 9, 1), "90.00"),
            ("recurring", date(2026, 10, 1), "3500.00"),
        ],
        "3590.00",
    ),
    (
        date(2026, 11, 1),
        "PO-9000",
        [
            # 100 h × 160.00 = 16,000.00, capped: 20,000.00 − 1,500.00 − 3,200.00 = 15,300.00 left
            ("time_and_materials", date(2026, 10, 1), "15300.00"),
            ("usage", date(2026, 10, 1), "150.00"),  # 100 + 100 × 0.50
            ("recurring", date(2026, 11, 1), "3500.00"),
        ],
        "18950.00",
    ),
    (
        date(2026, 12, 1),
        "PO-9000",
        [
            ("usage", date(2026, 11, 1), "10.00"),
            ("recurring", date(2026, 12, 1), "3500.00"),
        ],
        "3510.00",
    ),
    (date(2027, 1, 1), "PO-9000", [("usage", date(2026, 12, 1), "200.00")], "200.00"),  # 100 + 200 × 0.50
]


def at(day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


class Api:
    def __init__(self, tenant):
        self.client = Client(HTTP_HOST=tenant.host, HTTP_AUTHORIZATION=f"Bearer {tenant.api_key}")

    def post(self, path: str, body, status: int | tuple = (200, 201, 202)) -> dict:
        response = self.client.post(path, json.dumps(body), content_type="application/json")
        expected = status if isinstance(status, tuple) else (status,)
        assert response.status_code in expected, (path, response.status_code, response.content[:2000])
        return response.json()

    def get(self, path: str) -> dict:
        response = self.client.get(path)
        assert response.status_code == 200, (path, response.content[:2000])
        return response.json()


def month_end(month: int) -> date:
    return (date(2026, month, 28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)


def test_a_year_of_billing_through_the_public_api_matches_the_hand_calculation(in_tenant_a):
    from contracts.tests.factories import contract_payload, customer_payload

    api = Api(in_tenant_a)
    tag = uuid.uuid4().hex[:8]
    number, customer = f"C-YEAR-{tag}", f"acme-{tag}"
    runs: list[dict] = []

    def run(day: date) -> None:
        with time_machine.travel(at(day, 6), tick=False):
            runs.append(api.post("/api/v1/runs", {"as_of": day.isoformat(), "only": ["billing"]}, status=200))
            assert runs[-1]["status"] == "succeeded" and runs[-1]["summary"]["billing"]["errors"] == []

    def usage(month: int, quantity: int, day: date) -> None:
        if quantity:
            events = [
                {
                    "transaction_id": f"{tag}-u-{month}-{day}-{i}",
                    "contract": number,
                    "metric": "api_calls",
                    "quantity": str(part),
                    "timestamp": f"{day.isoformat()}T10:00:00Z",
                }
                for i, part in enumerate([quantity // 2, quantity - quantity // 2])
            ]
            # Sent twice, as a retrying client would: the duplicates are ignored.
            assert api.post("/api/v1/usage-events", {"events": events})["accepted"] == 2
            assert api.post("/api/v1/usage-events", {"events": events})["duplicates"] == 2

    def time_entry(role: str, hours: str, day: date) -> None:
        api.post(
            "/api/v1/time-entries",
            [
                {
                    "external_id": f"{tag}-t-{role}-{day}",
                    "contract": number,
                    "person": "Ada",
                    "role": role,
                    "date": day.isoformat(),
                    "hours": hours,
                }
            ],
        )

    with time_machine.travel(at(date(2026, 1, 10), 9), tick=False):
        api.post("/api/v1/customers", customer_payload(external_id=customer), status=201)
        created = api.post("/api/v1/contracts", contract_payload(customer=customer, number=number), status=201)
        assert created["number"] == number
    run(date(2026, 1, 15))

    for month in range(1, 13):
        last = month_end(month)
        with time_machine.travel(at(last, 20), tick=False):
            usage(month, USAGE[month], last if month > 1 else date(2026, 1, 20))
            for role, table in (("consultant", CONSULTANT_HOURS), ("engineer", ENGINEER_HOURS)):
                # At most 10 h a day, on the days before the month's last.
                total = D(table.get(month, "0"))
                for i in range(int((total / 10).to_integral_value(rounding="ROUND_CEILING"))):
                    time_entry(role, str(min(D(10), total - 10 * i)), last - timedelta(days=i + 1))
        if month == 3:
            with time_machine.travel(at(date(2026, 3, 10), 9), tick=False):
                usage(2, 40, date(2026, 2, 20))  # late February usage, after February was invoiced
        if month == 5:
            with time_machine.travel(at(date(2026, 5, 20), 11), tick=False):
                webhook = {
                    "kind": "milestone_completed",
                    "contract": number,
                    "milestone_ref": "PROJ-12",
                    "occurred_at": "2026-05-20T10:00:00Z",
                    "external_id": f"{tag}-jira-1",
                    "source": "jira",
                }
                for _ in range(5):  # the project tool retries its webhook
                    api.post("/api/v1/delivery-events", webhook, status=202)
        if month == 6:
            with time_machine.travel(at(date(2026, 6, 10), 9), tick=False):
                current = api.get(f"/api/v1/contracts/{number}")
                refs = api.get(f"/api/v1/contracts/{number}/versions")[-1]["line_refs"]
                lines = []
                for ref, line in zip(refs, current["price_lines"], strict=True):
                    line = dict(line, line_ref=ref)
                    if line["kind"] == "recurring":
                        line["amount"] = "3500.00"
                    if line["kind"] == "time_and_materials":
                        line["rates"] = [{"role": "engineer", "hourly_rate": "160.00"}]
                    lines.append(line)
                api.post(
                    f"/api/v1/contracts/{number}/amendments",
                    {
                        "effective_from": "2026-07-01",
                        "reason": "Renegotiated rates",
                        "po_number": "PO-9000",
                        "price_lines": lines,
                    },
                    status=201,
                )
        run(date(2026, month + 1, 1) if month < 12 else date(2027, 1, 1))

    with time_machine.travel(at(date(2027, 1, 2), 9), tick=False):
        # A rerun of any past date finds nothing left to bill.
        run(date(2026, 6, 1))
        assert [i for i in runs[-1]["summary"]["billing"]["invoices"] if i["contract"] == number] == []
        page = api.get(f"/api/v1/invoices?contract={number}&limit=200")

    invoices = sorted(page["items"], key=lambda i: (i["issue_date"], i["po_number"], int(i["id"])))
    got = [
        (
            date.fromisoformat(i["issue_date"]),
            i["po_number"],
            [
                (ln["kind"], date.fromisoformat(ln["period_start"]) if ln["period_start"] else None, ln["amount"])
                for ln in i["lines"]
            ],
            i["total"],
        )
        for i in invoices
    ]
    expected = [(d, po, sorted(lines, key=_line_order), total) for d, po, lines, total in EXPECTED]
    got = [(d, po, sorted(lines, key=_line_order), total) for d, po, lines, total in got]
    assert got == expected

    for invoice in invoices:
        assert invoice["status"] == "issued" and invoice["currency"] == "USD"
        assert invoice["due_date"] == (date.fromisoformat(invoice["issue_date"]) + timedelta(days=30)).isoformat()
        assert invoice["amount_due"] == invoice["total"]
        assert all(line["price_line"] for line in invoice["lines"])
    numbers = [int(i["number"].rsplit("-", 1)[1]) for i in sorted(invoices, key=lambda i: int(i["id"]))]
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))  # gapless
    yearly = sum(D(i["total"]) for i in invoices)
    assert yearly == sum(D(total) for *_, total in EXPECTED) == D("78245.00")


def _line_order(line):
    kind, start, amount = line
    return (kind, start or date.min, amount)
