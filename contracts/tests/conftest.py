"""Fixtures for contracts tests: API and signed-in clients on tenant A, and helpers to post forms."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django_tenants.utils import schema_context

from tests.helpers import client_for


@pytest.fixture
def api(db, tenant_a) -> Client:
    """An API client for tenant A (its provisioning key), data rolled back after the test."""
    return Client(HTTP_HOST=tenant_a.host, HTTP_AUTHORIZATION=f"Bearer {tenant_a.api_key}")


@pytest.fixture
def in_a(db, tenant_a):
    """A context manager factory: ``with in_a(): ...`` runs ORM code in tenant A's schema."""

    def enter():
        return schema_context(tenant_a.schema)

    yield enter
    connection.set_schema_to_public()


@pytest.fixture
def admin_client(db, tenant_a) -> Client:
    return client_for(tenant_a, email=tenant_a.users["admin"])


def contract_form_post(payload: dict, *, customer_pk: int | None = None) -> dict:
    """The contract editor's POST for a wire payload, as the browser would send it."""
    data: dict = {}
    for key in (
        "number",
        "title",
        "status",
        "start_date",
        "end_date",
        "currency",
        "payment_terms_days",
        "po_number",
        "billing_anchor",
        "renewal_term_months",
        "notice_period_days",
        "renewal_uplift_pct",
        "owner",
    ):
        value = payload.get(key)
        if value is not None:
            data[key] = str(value)
    data["customer"] = str(customer_pk) if customer_pk is not None else payload.get("customer", "")
    for key in ("auto_renew", "po_required"):
        if payload.get(key):
            data[key] = "on"
    tokens = []
    for index, line in enumerate(payload.get("price_lines", [])):
        token = f"r{index}"
        tokens.append(token)
        prefix = f"pl-{token}-"
        for key, value in line.items():
            if key == "tiers" and value is not None:
                tier_tokens = []
                for k, tier in enumerate(value):
                    tier_tokens.append(f"t{k}")
                    tp = f"{prefix}tier-t{k}-"
                    data[tp + "up_to"] = "" if tier.get("up_to") is None else str(tier["up_to"])
                    data[tp + "price"] = str(tier.get("unit_amount", tier.get("rate", "")))
                    data[tp + "flat_amount"] = str(tier.get("flat_amount", ""))
                data[prefix + "tier"] = tier_tokens
            elif key == "rates" and value is not None:
                rate_tokens = []
                for k, rate in enumerate(value):
                    rate_tokens.append(f"x{k}")
                    data[f"{prefix}rate-x{k}-role"] = rate.get("role", "")
                    data[f"{prefix}rate-x{k}-hourly_rate"] = str(rate.get("hourly_rate", ""))
                data[prefix + "rate_row"] = rate_tokens
            else:
                data[prefix + key] = "" if value is None else str(value)
    data["pl"] = tokens
    return data


def error_fields(response) -> dict[str, list[str]]:
    """Every error an editor page shows, named like the service names them."""
    ctx = response.context
    errors: dict[str, list[str]] = {}
    form = ctx.get("form")
    if form is not None:
        for name, messages in form.errors.items():
            errors[name] = list(messages)
    for name, messages in (ctx.get("other_errors") or {}).items():
        errors[name] = list(messages)
    for index, row in enumerate(ctx.get("rows") or []):
        for name, messages in row.errors.items():
            errors[f"price_lines.{index}" + (f".{name}" if name else "")] = list(messages)
    return errors
