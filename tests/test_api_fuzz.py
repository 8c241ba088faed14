"""Schemathesis against the API's own OpenAPI document: no 500, no answer that breaks its schema.

Runs the Schemathesis CLI with every check (``--checks all``) and every phase — the schema's
examples, the coverage phase (boundary and negative values, undeclared methods), random fuzzing and
the stateful phase (chains of calls linked by the ids they return) — against a live server, on a
tenant of its own seeded with one object of every kind the API reads (customer, contract with every
kind of price line, invoices from a billing run, a discount, a credit, a custom rate, a renewal
alert), so path ids reach real objects rather than 404s. Examples per operation are bounded
(``FUZZ_MAX_EXAMPLES``, default 5) so the run takes a minute or two; raise it for a deeper run.

The expectations we set in ``schemathesis.toml`` beside this file are explained there. The full
report is written to ``test-artifacts/schemathesis.txt``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import time_machine
from django.db import connection

# Minutes on a busy shared machine, about one alone (see the module docstring for the knobs).
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

HERE = Path(__file__).parent
CONFIG = HERE / "schemathesis.toml"
ARTIFACTS = HERE.parent / "test-artifacts"


def _seed() -> dict[str, str]:
    """One object of every kind an API path names; returns path parameter -> value. (A new path
    parameter belongs here too, or the fuzzer only ever sees its 404.)"""
    from billing.models import Invoice
    from billing.services.runs import run_create, run_execute
    from contracts.models import Contract
    from contracts.services.contracts import contract_create
    from contracts.services.customers import customer_create
    from contracts.tests.factories import contract_payload, customer_payload
    from discounts.services.exceptions import credit_create, discount_create, price_override_create
    from receivables.services.ledger import payment_record
    from renewals.models import RenewalAlert
    from revexos.dates import tenant_today

    today = tenant_today()
    customer = customer_create(data=customer_payload(), note="fuzz seed")
    contract = Contract.objects.get(pk=contract_create(data=contract_payload(), note="fuzz seed").pk)
    start = contract.start_date
    common = {"reason": "seed", "approved_label": "fuzz"}
    discount = discount_create(
        kind="percentage", value=10, start_date=start, end_date=today + timedelta(days=400), contract=contract, **common
    )
    credit = credit_create(
        customer=customer, amount=500, currency="USD", expires_on=today + timedelta(days=400), **common
    )
    override = price_override_create(
        contract=contract, line_ref="L1", rate=100, start_date=today, end_date=today + timedelta(days=20), **common
    )
    run = run_execute(run_id=run_create(as_of=today, only=None).pk)
    payment = payment_record(
        customer=customer, amount=Decimal("100.00"), currency="USD", received_on=today, method="bank_transfer"
    ).payment
    invoice = Invoice.objects.filter(contract=contract).order_by("pk").first()
    alert = RenewalAlert.objects.filter(contract=contract).first()
    assert invoice is not None and alert is not None, "the seed run should bill and raise a renewal alert"
    return {
        "ref": contract.number,
        "customer_ref": customer.external_id,
        "invoice_id": str(invoice.pk),
        "discount_id": str(discount.pk),
        "credit_id": str(credit.pk),
        "override_id": str(override.pk),
        "alert_id": str(alert.pk),
        "run_id": str(run.pk),
        "payment_id": str(payment.pk),
    }


@pytest.fixture
def on_a_fixed_day():
    """The whole run (this process, so the live server too) on 1 Dec 2026, with the clock ticking:
    the seeded contract (2026-01-15 – 2026-12-31) has invoices and is inside its renewal window."""
    with time_machine.travel(datetime(2026, 12, 1, 12, tzinfo=UTC), tick=True):
        yield


@pytest.fixture
def fuzz_tenant(on_a_fixed_day, committed_db):
    """A tenant only the fuzzer writes to; its schema is dropped afterwards."""
    from django_tenants.utils import schema_context

    from revexos.tenancy.models import Tenant
    from revexos.tenancy.services.provisioning import tenant_provision

    slug = f"fuzz-{uuid.uuid4().hex[:8]}"
    result = tenant_provision(
        slug=slug,
        name="Fuzz Ltd",
        admin_email=f"admin@{slug}.example",
        admin_password="correct-horse-battery-9",
        with_api_key=True,
    )
    try:
        with schema_context(result.tenant.schema_name):
            ids = _seed()
        connection.set_schema_to_public()
        yield result, ids
    finally:
        connection.set_schema_to_public()
        with connection.cursor() as cursor:
            cursor.execute(f'DROP SCHEMA IF EXISTS "{result.tenant.schema_name}" CASCADE')
        Tenant.objects.filter(pk=result.tenant.pk).delete()


def _config(tmp_path: Path, ids: dict[str, str]) -> Path:
    """The checked-in settings plus the seeded objects' ids as path parameters."""
    toml = CONFIG.read_text()
    params = {k: v for k, v in ids.items() if k != "customer_ref"}
    toml += "\n[parameters]\n" + "".join(f'"path.{k}" = {json.dumps(v)}\n' for k, v in params.items())
    toml += (
        '\n[[operations]]\ninclude-path-regex = "^/api/v1/customers/"\n'
        f'parameters = {{ "path.ref" = {json.dumps(ids["customer_ref"])} }}\n'
    )
    path = tmp_path / "schemathesis.toml"
    path.write_text(toml)
    return path


def test_schemathesis_finds_no_server_error_and_no_broken_answer(fuzz_tenant, live_server_url, tmp_path):
    provisioned, ids = fuzz_tenant
    port = live_server_url.rsplit(":", 1)[1]
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file",
        str(_config(tmp_path, ids)),
        "run",
        f"http://127.0.0.1:{port}/api/v1/openapi.json",
        "--header",
        f"Host: {provisioned.domain}:{port}",
        "--header",
        f"Authorization: Bearer {provisioned.api_key}",
        "--checks",
        "all",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--max-examples",
        os.environ.get("FUZZ_MAX_EXAMPLES", "5"),
        "--seed",
        os.environ.get("FUZZ_SEED", "20260601"),
        "--workers",
        "2",
        "--no-color",
        "--generation-database",
        "none",
    ]
    run = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False, cwd=tmp_path)
    output = run.stdout + run.stderr
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "schemathesis.txt").write_text(output)
    assert run.returncode == 0, output[-15000:]
