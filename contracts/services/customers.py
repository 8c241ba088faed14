"""Customers: create and update through one validation path (API, forms, CSV import)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from contracts.hooks import customer_changed
from contracts.models import Customer
from contracts.services._audit import stamp
from contracts.services.tax import tax_id_problem
from contracts.wire import EXTERNAL_ID_RE, FieldErrors, Reader, address_read, email_list

CUSTOMER_KEYS = (
    "external_id",
    "legal_name",
    "currency",
    "billing_emails",
    "tax_id",
    "tax_exempt",
    "tax_exempt_reason",
    "tax_exempt_certificate",
    "address",
    "crm_id",
    "accounting_id",
    "stripe_customer_id",
    "owner",
    "is_active",
)


def _owner(email: str, errors: FieldErrors, name: str = "owner"):
    from revexos.accounts.models import User

    if not email:
        return None
    user = User.objects.filter(email__iexact=email, is_active=True).first()
    if user is None:
        errors.add(name, f"No active user has the e-mail {email}.")
    return user


def customer_validate(*, data: Any, customer: Customer | None = None, partial: bool = False) -> dict[str, Any]:
    """Model values for ``data`` (the API shape) or a ValidationError naming every bad field.

    ``partial`` reads only the keys present (PATCH); otherwise missing keys take their defaults.
    """
    errors = FieldErrors()
    if not isinstance(data, Mapping):
        raise ValidationError({"non_field_errors": ["Send the customer as a JSON object."]})
    r = Reader(data, errors)
    r.unknown_keys(CUSTOMER_KEYS, ignore=("id",))
    values: dict[str, Any] = {}

    def want(key: str) -> bool:
        return not partial or key in data

    if want("external_id"):
        values["external_id"] = r.text(
            "external_id",
            max_length=100,
            required=True,
            pattern=EXTERNAL_ID_RE,
            pattern_message="An external id has no spaces or slashes, e.g. acme-ltd.",
        )
        if values["external_id"]:
            clash = Customer.objects.filter(external_id=values["external_id"])
            if customer is not None:
                clash = clash.exclude(pk=customer.pk)
            if clash.exists():
                errors.add("external_id", f"A customer with the external id {values['external_id']} already exists.")
    if want("legal_name"):
        values["legal_name"] = r.text("legal_name", max_length=200, required=True)
    if want("currency"):
        values["currency"] = r.currency("currency", default="USD")
    if want("billing_emails"):
        values["billing_emails"] = email_list(data.get("billing_emails"), "billing_emails", errors)
    if want("tax_id"):
        values["tax_id"] = r.text("tax_id", max_length=50)
    for key, label in (("crm_id", 100), ("accounting_id", 100), ("stripe_customer_id", 100)):
        if want(key):
            values[key] = r.text(key, max_length=label)
    if want("address"):
        address = address_read(data.get("address"), errors)
        if not partial:  # a full write clears the parts that were left out
            address = {
                f: address.get(f, "")
                for f in ("address_line1", "address_line2", "city", "region", "postal_code", "country")
            }
        values.update(address)
    elif not partial:
        values.update(dict.fromkeys(("address_line1", "address_line2", "city", "region", "postal_code", "country"), ""))
    if want("tax_exempt"):
        values["tax_exempt"] = r.boolean("tax_exempt", default=False)
    if want("tax_exempt_reason"):
        values["tax_exempt_reason"] = r.text("tax_exempt_reason", max_length=300)
    if want("tax_exempt_certificate"):
        values["tax_exempt_certificate"] = r.text("tax_exempt_certificate", max_length=100)
    _tax_status_check(values, customer, errors)
    if want("owner"):
        values["owner"] = _owner(r.email("owner"), errors)
    if want("is_active"):
        values["is_active"] = r.boolean("is_active", default=True)
    errors.raise_if_any()
    return values


def _tax_status_check(values: dict[str, Any], customer: Customer | None, errors: FieldErrors) -> None:
    """A tax id must be valid for its country (python-stdnum); an exempt customer says why."""

    def current(name: str, default: Any = "") -> Any:
        if name in values:
            return values[name]
        return getattr(customer, name) if customer is not None else default

    if values.get("tax_id") and not errors.has("tax_id"):
        problem = tax_id_problem(values["tax_id"], country=current("country"), check_digits=False)
        if problem:
            errors.add("tax_id", problem)
    if current("tax_exempt", False) and not (current("tax_exempt_reason") or current("tax_exempt_certificate")):
        errors.add(
            "tax_exempt_reason",
            "An exempt customer needs the reason for the exemption or its certificate number; it is printed on its invoices.",
        )


@transaction.atomic
def customer_create(*, data: Any, user=None, note: str = "") -> Customer:
    values = customer_validate(data=data)
    customer = Customer(**values)
    stamp(customer, user=user, note=note or "Created")
    customer.save()
    return customer


@transaction.atomic
def customer_update(*, customer: Customer, data: Any, user=None, partial: bool = True, note: str = "") -> Customer:
    """Change the fields present in ``data``; with ``partial=False`` every field is replaced."""
    customer = Customer.objects.select_for_update().get(pk=customer.pk)
    values = customer_validate(data=data, customer=customer, partial=partial)
    for name, value in values.items():
        setattr(customer, name, value)
    stamp(customer, user=user, note=note or "Updated")
    customer.save()
    customer_changed(customer_id=customer.pk)
    return customer
