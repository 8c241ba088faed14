"""Form errors speak the user's language: no internal field names (issue #16 item 18)."""

from __future__ import annotations

import pytest

from contracts.templatetags.contracts_tags import error_label


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("issuing_entity", "Issuing entity"),
        ("max_cycles", "Max cycles"),
        ("no_expiry_reason", "No expiry reason"),
        ("address.country", "Address country"),
        ("non_field_errors", ""),
        ("price_lines", ""),
    ],
)
def test_error_names_read_as_labels(name, label):
    assert error_label(name) == label


def test_the_discount_form_names_no_internal_field(in_tenant_a):
    from datetime import date

    from billing.tests.builders import contract_with
    from revexos.accounts.models import Role
    from tests.helpers import client_for

    contract = contract_with({"kind": "recurring", "amount": "100.00", "frequency": "monthly"}, start=date(2026, 1, 1))
    client = client_for(in_tenant_a, email=in_tenant_a.users[Role.FINANCE])
    page = client.post(
        "/discounts/new/discount/",
        {"contract": contract.pk, "kind": "percentage", "value": "10", "start_date": "2026-01-01", "reason": "x"},
    ).content.decode()
    assert "Give an end date or a number of billing cycles" in page
    for internal in ("max_cycles", "no_expiry_reason", "end_date", "line_ref"):
        assert f">{internal}" not in page and f"{internal}:" not in page and f"({internal})" not in page
