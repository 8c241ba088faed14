"""Tiers: contiguous, strictly increasing, only the last unbounded — in the service and in the database."""

from __future__ import annotations

import copy

import pytest
from django.db import IntegrityError, connection, transaction

from contracts.models import PriceTier
from contracts.services.contracts import contract_create
from contracts.services.customers import customer_create
from contracts.tests.factories import PriceLineFactory, contract_payload, customer_payload
from contracts.wire import FieldErrors, price_line_read

pytestmark = pytest.mark.django_db


def usage_line(tiers, charge_model="graduated"):
    return {
        "kind": "usage",
        "description": "API calls",
        "metric": "api_calls",
        "frequency": "monthly",
        "charge_model": charge_model,
        "tiers": tiers,
    }


def t(up_to, price="1.00", flat="0"):
    return {"up_to": up_to, "unit_amount": price, "flat_amount": flat}


def problems(tiers, charge_model="graduated"):
    errors = FieldErrors()
    price_line_read(usage_line(tiers, charge_model), 0, errors)
    return errors.errors


@pytest.mark.parametrize("charge_model", ["graduated", "volume"])
def test_contiguous_increasing_tiers_ending_unbounded_are_accepted(charge_model):
    assert problems([t("100"), t("500", "0.80"), t(None, "0.50")], charge_model) == {}


@pytest.mark.parametrize(
    "tiers, expected",
    [
        ([t("500"), t("100"), t(None)], "must be greater than the previous"),  # overlap: 101–500 then ≤100
        ([t("100"), t("100"), t(None)], "must be greater than the previous"),  # a tier of no width
        ([t(None), t("100"), t(None)], "only the last tier may have no upper bound"),
        ([t("100"), t(None), t("500")], "only the last tier may have no upper bound"),
        ([t("100"), t("500")], "last tier must have no upper bound"),  # a gap above 500: nothing prices it
        ([], "needs tiers"),
        ([t("0"), t(None)], "greater than 0"),
        ([t("100", "-1"), t(None)], "must not be negative"),
    ],
)
def test_bad_tier_sets_are_rejected_with_a_reason(tiers, expected):
    errors = problems(tiers)
    messages = [m for name, msgs in errors.items() if name.startswith("price_lines.0.tiers") for m in msgs]
    assert any(expected in m for m in messages), errors


def test_graduated_percentage_tiers_take_rates_not_unit_amounts():
    good = [{"up_to": "1000", "rate": "5"}, {"up_to": None, "rate": "2.5"}]
    assert problems(good, "graduated_percentage") == {}
    bad = problems([t("1000"), t(None)], "graduated_percentage")
    assert "price_lines.0.tiers.0.unit_amount" in bad and "price_lines.0.tiers.0.rate" in bad


def test_a_rejected_tier_set_writes_no_contract(in_a):
    from django.core.exceptions import ValidationError

    from contracts.models import Contract

    with in_a():
        customer_create(data=customer_payload())
        payload = copy.deepcopy(contract_payload())
        payload["price_lines"][4]["tiers"] = [t(None), t("100")]
        with pytest.raises(ValidationError):
            contract_create(data=payload)
        assert Contract.objects.count() == 0


def test_the_database_refuses_tiers_that_are_not_contiguous(in_a):
    """The deferred constraint trigger is the last guard, e.g. against the Django admin or a script."""
    with in_a():
        line = PriceLineFactory(graduated=True, tiers=[("100", "1.00"), (None, "0.50")])
        with pytest.raises(IntegrityError, match="not contiguous"), transaction.atomic():
            PriceTier.objects.filter(price_line=line, position=2).update(up_to="500")  # last tier bounded
            with connection.cursor() as cursor:
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        with pytest.raises(IntegrityError, match="not contiguous"), transaction.atomic():
            PriceTier.objects.create(
                price_line=line, position=3, up_to="50", unit_amount="0.40"
            )  # after the unbounded one
            with connection.cursor() as cursor:
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        with transaction.atomic():  # a valid change passes
            PriceTier.objects.filter(price_line=line, position=1).update(up_to="200")
            with connection.cursor() as cursor:
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
