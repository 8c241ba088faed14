"""Demo data for the ``demo`` tenant: realistic customers, two issuing entities, ~50 contracts.

Every price line kind and every usage charge model appears, with amendments and milestones.
Deterministic (a seeded random) and relative to today, so the demo always looks current. Runs
through the same services as the UI and the API, so the demo data obeys every rule.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from contracts.models import Contract, Milestone, MilestoneStatus
from contracts.services.contracts import contract_amend, contract_create
from contracts.services.customers import customer_create
from contracts.services.issuing_entities import issuing_entity_create
from revexos.pricing import add_months

CUSTOMERS = [
    ("bluepeak-analytics", "Bluepeak Analytics Ltd", "GBP", "GB", "London", "14 Clerkenwell Road", "EC1M 5PQ"),
    ("cobalt-freight", "Cobalt Freight GmbH", "EUR", "DE", "Hamburg", "Am Sandtorkai 41", "20457"),
    ("harbor-finch", "Harbor & Finch LLP", "USD", "US", "Boston", "200 Berkeley Street", "02116"),
    ("lumen-health", "Lumen Health Partners Inc.", "USD", "US", "Chicago", "311 W Monroe St", "60606"),
    ("meridian-retail", "Meridian Retail Group plc", "GBP", "GB", "Manchester", "1 Spinningfields", "M3 3AP"),
    ("northshore-bank", "Northshore Bank N.A.", "USD", "US", "New York", "55 Water Street", "10041"),
    ("orchid-biotech", "Orchid Biotech AB", "EUR", "SE", "Stockholm", "Sveavägen 44", "111 34"),
    ("pinecrest-hotels", "Pinecrest Hotels Ltd", "GBP", "GB", "Edinburgh", "20 Princes Street", "EH2 2AN"),
    ("quarry-media", "Quarry Media Inc.", "USD", "US", "Austin", "500 W 2nd St", "78701"),
    ("redwood-energy", "Redwood Energy Corp.", "USD", "US", "Denver", "1700 Lincoln St", "80203"),
    ("silverline-insurance", "Silverline Insurance Ltd", "GBP", "GB", "Leeds", "2 Wellington Place", "LS1 4AP"),
    ("tidewater-ports", "Tidewater Ports B.V.", "EUR", "NL", "Rotterdam", "Wilhelminakade 91", "3072 AP"),
    ("umbra-games", "Umbra Games Inc.", "USD", "US", "Seattle", "1201 3rd Ave", "98101"),
    ("vantage-mobility", "Vantage Mobility SAS", "EUR", "FR", "Lyon", "12 Rue de la République", "69002"),
    ("willow-education", "Willow Education Trust", "GBP", "GB", "Bristol", "1 Temple Quay", "BS1 6DZ"),
    ("yellowtail-foods", "Yellowtail Foods Pty Ltd", "USD", "AU", "Sydney", "1 Market Street", "2000"),
    ("zephyr-aviation", "Zephyr Aviation Ltd", "GBP", "GB", "Bristol", "Filton Way 3", "BS34 7QS"),
    ("atlas-construction", "Atlas Construction Inc.", "USD", "US", "Houston", "909 Fannin St", "77010"),
    ("kestrel-payments", "Kestrel Payments Ltd", "GBP", "GB", "London", "30 Finsbury Square", "EC2A 1AG"),
    ("fjord-marketplace", "Fjord Marketplace AS", "EUR", "NO", "Oslo", "Karl Johans gate 16", "0154"),
]

US_STATES = {
    "Boston": "MA",
    "Chicago": "IL",
    "New York": "NY",
    "Austin": "TX",
    "Denver": "CO",
    "Seattle": "WA",
    "Houston": "TX",
}

# Digits of each country's tax id before its check digits; the demo draws numbers until python-stdnum
# accepts one, so every demo customer carries an id that passes the same check as a real one.
_TAX_ID_FORMATS = {
    "GB": ("GB", 9, ""),
    "DE": ("DE", 9, ""),
    "NL": ("NL", 9, "B01"),
    "FR": ("FR", 11, ""),
    "SE": ("SE", 10, "01"),
    "NO": ("NO", 9, "MVA"),
    "AU": ("", 11, ""),
}


def _demo_tax_id(rng: random.Random, country: str) -> str:
    from contracts.services.tax import tax_id_problem

    if country == "US":
        return f"{rng.choice(['84', '46', '27', '81'])}-{rng.randrange(1000000, 9999999)}"
    prefix, digits, suffix = _TAX_ID_FORMATS.get(country, ("", 0, ""))
    for _ in range(5000):
        candidate = f"{prefix}{rng.randrange(10 ** (digits - 1), 10**digits)}{suffix}"
        if not tax_id_problem(candidate, country=country):
            return candidate
    return ""


ROLES = [("engineer", "150.00"), ("senior engineer", "185.00"), ("designer", "120.00"), ("project manager", "135.00")]


def _money(rng: random.Random, low: int, high: int, step: int = 100) -> str:
    return f"{rng.randrange(low, high + 1, step)}.00"


def _lines_for(template: str, rng: random.Random, start: date, end: date, n: int) -> list[dict]:
    """Price lines of one of the demo's contract shapes."""
    mid = start + (end - start) / 2
    if template == "retainer":
        return [
            {
                "kind": "recurring",
                "description": "Advisory retainer",
                "amount": _money(rng, 2000, 9000),
                "frequency": "monthly",
                "timing": "advance",
                "included_hours": str(rng.choice([10, 20, 30])),
                "overage_rate": rng.choice(["150.00", "165.00"]),
            },
            {
                "kind": "fixed_fee",
                "description": "Onboarding and discovery",
                "amount": _money(rng, 3000, 8000, 500),
                "bill_on": start.isoformat(),
            },
        ]
    if template == "project":
        phases = [("Discovery sign-off", 0.2), ("Beta release", 0.5), ("Go-live", 0.85)]
        return [
            {
                "kind": "milestone",
                "description": name,
                "amount": _money(rng, 8000, 30000, 500),
                "reference": f"PRJ{n}-{i + 1}",
                "expected_date": (start + (end - start) * frac).isoformat(),
            }
            for i, (name, frac) in enumerate(phases)
        ] + [
            {
                "kind": "time_and_materials",
                "description": "Change requests",
                "rates": [{"role": r, "hourly_rate": h} for r, h in ROLES[:2]],
                "cap": _money(rng, 10000, 30000, 1000),
            }
        ]
    if template == "tm":
        picked = rng.sample(ROLES, 3)
        return [
            {
                "kind": "time_and_materials",
                "description": "Engineering services",
                "rates": [{"role": r, "hourly_rate": h} for r, h in picked],
                "cap": rng.choice([None, _money(rng, 40000, 120000, 5000)]),
            }
        ]
    if template == "api_per_unit":
        return [
            {
                "kind": "recurring",
                "description": "Platform subscription",
                "amount": _money(rng, 500, 2500),
                "frequency": "monthly",
                "timing": "advance",
            },
            {
                "kind": "usage",
                "description": "API calls",
                "metric": "api_calls",
                "frequency": "monthly",
                "charge_model": "per_unit",
                "unit_amount": rng.choice(["0.0015", "0.002", "0.0025"]),
                "free_units": "100000",
                "minimum_commitment": "0",
            },
        ]
    if template == "graduated":
        return [
            {
                "kind": "usage",
                "description": "Shipments tracked",
                "metric": "shipments",
                "frequency": "monthly",
                "charge_model": "graduated",
                "free_units": "0",
                "minimum_commitment": _money(rng, 500, 1500),
                "tiers": [
                    {"up_to": "1000", "unit_amount": "1.00", "flat_amount": "0"},
                    {"up_to": "5000", "unit_amount": "0.80", "flat_amount": "0"},
                    {"up_to": None, "unit_amount": "0.50", "flat_amount": "0"},
                ],
            }
        ]
    if template == "volume":
        return [
            {
                "kind": "recurring",
                "description": "Support plan",
                "amount": _money(rng, 300, 1200),
                "frequency": "quarterly",
                "timing": "advance",
            },
            {
                "kind": "usage",
                "description": "Active seats",
                "metric": "active_seats",
                "frequency": "monthly",
                "charge_model": "volume",
                "aggregation": "unique_count",
                "aggregation_property": "user_id",
                "free_units": "0",
                "minimum_commitment": "0",
                "tiers": [
                    {"up_to": "50", "unit_amount": "12.00", "flat_amount": "0"},
                    {"up_to": "250", "unit_amount": "10.00", "flat_amount": "0"},
                    {"up_to": None, "unit_amount": "8.00", "flat_amount": "0"},
                ],
            },
        ]
    if template == "package":
        return [
            {
                "kind": "usage",
                "description": "SMS notifications",
                "metric": "sms_sent",
                "frequency": "monthly",
                "charge_model": "package",
                "package_size": "1000",
                "amount": "9.00",
                "free_units": "500",
                "minimum_commitment": "0",
            }
        ]
    if template == "percentage":
        return [
            {
                "kind": "usage",
                "description": "Card processing",
                "metric": "payments",
                "frequency": "monthly",
                "charge_model": "percentage",
                "rate": "1.4",
                "fixed_amount": "0.20",
                "per_transaction_min": "0.25",
                "per_transaction_max": "25.00",
                "free_units": "0",
                "free_amount": None,
                "minimum_commitment": _money(rng, 250, 1000, 50),
                "threshold_amount": "25000.00",
            },
            {"kind": "fixed_fee", "description": "Integration fee", "amount": "2500.00", "bill_on": start.isoformat()},
        ]
    if template == "graduated_percentage":
        return [
            {
                "kind": "usage",
                "description": "Marketplace commission",
                "metric": "gmv",
                "frequency": "monthly",
                "charge_model": "graduated_percentage",
                "free_units": "0",
                "minimum_commitment": "0",
                "tiers": [
                    {"up_to": "100000", "rate": "5", "flat_amount": "0"},
                    {"up_to": "500000", "rate": "3.5", "flat_amount": "0"},
                    {"up_to": None, "rate": "2", "flat_amount": "0"},
                ],
            }
        ]
    if template == "annual":
        return [
            {
                "kind": "recurring",
                "description": "Enterprise licence",
                "amount": _money(rng, 24000, 90000, 1000),
                "frequency": "annual",
                "timing": "advance",
            },
            {
                "kind": "recurring",
                "description": "Premium support",
                "amount": _money(rng, 1500, 4000),
                "frequency": "quarterly",
                "timing": "arrears",
            },
            {
                "kind": "milestone",
                "description": "Data migration complete",
                "amount": _money(rng, 5000, 15000, 500),
                "reference": f"MIG-{n}",
                "expected_date": min(mid, start + timedelta(days=90)).isoformat(),
            },
        ]
    raise ValueError(template)


TEMPLATES = [
    "retainer",
    "project",
    "tm",
    "api_per_unit",
    "graduated",
    "volume",
    "package",
    "percentage",
    "graduated_percentage",
    "annual",
]
TITLES = {
    "retainer": "Advisory retainer",
    "project": "Platform rebuild project",
    "tm": "Engineering services",
    "api_per_unit": "API platform",
    "graduated": "Shipment tracking",
    "volume": "Workspace seats",
    "package": "Notifications",
    "percentage": "Payments processing",
    "graduated_percentage": "Marketplace partnership",
    "annual": "Enterprise licence",
}


@transaction.atomic
def contracts_demo_seed(*, today: date | None = None, seed: int = 20260101, contracts: int = 50) -> dict[str, int]:
    """Seed the current tenant. Does nothing when it already has contracts."""
    from revexos.accounts.models import Role, User

    if Contract.objects.exists():
        return {"customers": 0, "contracts": 0, "amendments": 0}
    today = today or timezone.localdate()
    rng = random.Random(seed)
    admin = User.objects.filter(role=Role.ADMIN, is_active=True).order_by("pk").first()
    managers = list(User.objects.filter(role__in=[Role.ACCOUNT_MANAGER, Role.ADMIN], is_active=True).order_by("pk"))
    uk = issuing_entity_create(
        user=admin,
        data={
            "legal_name": "Northwind Consulting Ltd",
            "invoice_prefix": "NWL-",
            "currency": "GBP",
            "tax_id": "GB980780684",
            "email": "billing@northwind.example",
            "bank_details": "Barclays · Sort code 20-00-00 · Account 43218765\nIBAN GB29 BARC 2000 0043 2187 65",
            "address": {"line1": "8 Bishopsgate", "city": "London", "postal_code": "EC2N 4BQ", "country": "GB"},
        },
    )
    us = issuing_entity_create(
        user=admin,
        data={
            "legal_name": "Northwind Consulting Inc.",
            "invoice_prefix": "NWI-",
            "currency": "USD",
            "tax_id": "84-2719365",
            "email": "ar@northwind.example",
            "bank_details": "JPMorgan Chase · ABA 021000021 · Account 7712 0045 3381",
            "address": {
                "line1": "250 Greenwich Street",
                "city": "New York",
                "region": "NY",
                "postal_code": "10007",
                "country": "US",
            },
        },
    )
    customers = []
    for external_id, name, currency, country, city, line1, postal in CUSTOMERS:
        domain = external_id.split("-")[0]
        customers.append(
            customer_create(
                user=admin,
                data={
                    "external_id": external_id,
                    "legal_name": name,
                    "currency": currency,
                    "billing_emails": [f"accounts.payable@{domain}.example"]
                    + ([f"finance@{domain}.example"] if rng.random() < 0.4 else []),
                    "tax_id": _demo_tax_id(rng, country),
                    "address": {
                        "line1": line1,
                        "city": city,
                        "postal_code": postal,
                        "country": country,
                        "region": US_STATES.get(city, ""),
                    },
                    "crm_id": f"hs-{rng.randrange(10000, 99999)}",
                    "accounting_id": f"XERO-{rng.randrange(1000, 9999)}",
                    "owner": rng.choice(managers).email if managers else None,
                },
            )
        )
    amendments = 0
    for n in range(contracts):
        template = TEMPLATES[n % len(TEMPLATES)]
        customer = customers[(n * 7) % len(customers)]
        months = rng.choice([12, 12, 12, 24, 6])
        if n % 9 == 4:  # a few that end soon: renewal season
            start = add_months(today, -months) + timedelta(days=rng.randrange(20, 75))
        elif n % 13 == 6:  # a few that have not started yet
            start = today + timedelta(days=rng.randrange(10, 45))
        else:
            start = today - timedelta(days=rng.randrange(30, 330))
        end = add_months(start, months) - timedelta(days=1)
        entity = uk if customer.currency in ("GBP", "EUR") else us
        status = "draft" if n % 17 == 3 else ("expired" if end < today else "active")
        data = {
            "customer": customer.external_id,
            "number": f"C-{1001 + n}",
            "title": f"{TITLES[template]} {start.year}",
            "issuing_entity": str(entity.pk),
            "status": status,
            "owner": customer.owner.email if customer.owner else None,
            "start_date": start.isoformat(),
            "end_date": end.isoformat(),
            "currency": customer.currency,
            "payment_terms_days": rng.choice([14, 30, 30, 45, 60]),
            "po_required": rng.random() < 0.3,
            "billing_anchor": rng.choice(["calendar", "calendar", "anniversary"]),
            "auto_renew": rng.random() < 0.6,
            "renewal_term_months": 12,
            "notice_period_days": rng.choice([30, 60, 90]),
            "renewal_uplift_pct": rng.choice(["0", "3", "5"]),
            "price_lines": [
                {k: v for k, v in line.items() if v is not None} for line in _lines_for(template, rng, start, end, n)
            ],
        }
        if data["po_required"]:
            data["po_number"] = f"PO-{rng.randrange(10000, 99999)}"
        if n % 22 == 2 and status == "active":
            # The client's procurement has not sent the PO yet: invoices wait, held, until finance records it.
            data["po_required"] = True
            data.pop("po_number", None)
        contract = contract_create(data=data, user=admin, note="Demo data")
        # Amend about a third of the running contracts part-way through their term.
        amend_on = start + timedelta(days=rng.randrange(40, 120))
        if status == "active" and n % 3 == 1 and start < amend_on < end:
            lines = [dict(line) for line in data["price_lines"]]
            recurring = next((line for line in lines if line["kind"] == "recurring"), None)
            if recurring is not None:
                recurring["amount"] = f"{(Decimal(recurring['amount']) * Decimal('1.08')).quantize(Decimal('1'))}.00"
                reason = "Price review: +8 % from the amendment date"
            else:
                lines.append(
                    {
                        "kind": "recurring",
                        "description": "Dedicated success manager",
                        "amount": _money(rng, 800, 2000),
                        "frequency": "monthly",
                        "timing": "advance",
                    }
                )
                reason = "Added a dedicated success manager"
            contract_amend(
                contract=contract,
                effective_from=amend_on,
                user=admin,
                changes={"reason": reason, "price_lines": lines, "payment_terms_days": data["payment_terms_days"]},
            )
            amendments += 1
    # Delivery state: milestones whose date has passed were mostly delivered.
    for milestone in Milestone.objects.filter(expected_date__lt=today, contract__status="active"):
        if rng.random() < 0.75:
            milestone.status = MilestoneStatus.DELIVERED
            milestone.delivered_at = timezone.make_aware(
                timezone.datetime.combine(milestone.expected_date, timezone.datetime.min.time()).replace(hour=15)
            )
            milestone.delivered_source = rng.choice(["jira", "api", "ui"])
            milestone._change_reason = "Delivered"
            milestone.save()
    # The demo's contracts were signed when they started, not today: a workspace with history.
    from django.db.models import DateTimeField, F
    from django.db.models.functions import Cast, Least, Now

    Contract.objects.update(created_at=Least(Cast(F("start_date"), DateTimeField()), Now()))
    return {"customers": len(customers), "contracts": contracts, "amendments": amendments}
