"""The tenant's own legal entities that issue invoices."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction

from contracts.models import IssuingEntity
from contracts.services._audit import stamp
from contracts.services.tax import tax_id_problem, tax_rates_seed
from contracts.wire import FieldErrors, Reader, address_read, address_to_wire

PREFIX_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9/_-]{0,19}$")
ENTITY_KEYS = (
    "legal_name",
    "tax_id",
    "currency",
    "bank_details",
    "email",
    "invoice_prefix",
    "number_prefix",
    "address",
    "is_active",
)


def issuing_entity_validate(*, data: Any, entity: IssuingEntity | None = None) -> dict[str, Any]:
    errors = FieldErrors()
    if not isinstance(data, Mapping):
        raise ValidationError({"non_field_errors": ["Send the issuing entity as an object."]})
    r = Reader(data, errors)
    r.unknown_keys(ENTITY_KEYS, ignore=("id",))
    # DESIGN.md §5.1 calls the invoice prefix ``number_prefix``; the forms call it ``invoice_prefix``.
    prefix_key = "number_prefix" if "number_prefix" in data and "invoice_prefix" not in data else "invoice_prefix"
    others = IssuingEntity.objects.exclude(pk=entity.pk) if entity is not None else IssuingEntity.objects.all()
    values: dict[str, Any] = {
        "legal_name": r.text("legal_name", max_length=200, required=True),
        "tax_id": r.text("tax_id", max_length=50),
        "currency": r.currency("currency", default="USD"),
        "bank_details": r.text("bank_details", max_length=2000),
        "email": r.email("email"),
        "invoice_prefix": r.text(
            prefix_key,
            max_length=20,
            required=True,
            pattern=PREFIX_RE,
            pattern_message="A prefix is letters, digits, dashes or slashes, e.g. INV- or NW-UK-.",
        ),
        "is_active": r.boolean("is_active", default=True),
    }
    address = address_read(data.get("address") or {}, errors)
    values.update(
        {f: address.get(f, "") for f in ("address_line1", "address_line2", "city", "region", "postal_code", "country")}
    )
    if values["legal_name"] and others.filter(legal_name__iexact=values["legal_name"]).exists():
        errors.add("legal_name", f"An issuing entity named {values['legal_name']} already exists.")
    if values["tax_id"] and not errors.has("tax_id"):
        problem = tax_id_problem(values["tax_id"], country=values["country"], check_digits=False)
        if problem:
            errors.add("tax_id", problem)
    if values["invoice_prefix"] and others.filter(invoice_prefix__iexact=values["invoice_prefix"]).exists():
        errors.add(
            prefix_key,
            f"The prefix {values['invoice_prefix']} is used by another entity; numbers must not collide.",
        )
    errors.raise_if_any()
    return values


@transaction.atomic
def issuing_entity_create(*, data: Any, user=None) -> IssuingEntity:
    entity = IssuingEntity(**issuing_entity_validate(data=data))
    stamp(entity, user=user, note="Created")
    entity.save()
    tax_rates_seed(country=entity.country)
    return entity


def issuing_entity_to_wire(entity: IssuingEntity) -> dict[str, Any]:
    """An issuing entity in the API's shape (DESIGN.md §5.1)."""
    return {
        "id": str(entity.pk),
        "legal_name": entity.legal_name,
        "number_prefix": entity.invoice_prefix,
        "currency": entity.currency,
        "tax_id": entity.tax_id,
        "address": address_to_wire(entity),
        "bank_details": entity.bank_details,
        "email": entity.email,
        "is_active": entity.is_active,
    }


@transaction.atomic
def issuing_entity_update(*, entity: IssuingEntity, data: Any, user=None, partial: bool = False) -> IssuingEntity:
    """Replace the entity's fields with ``data`` (the form), or only those present (``partial``: PATCH)."""
    entity = IssuingEntity.objects.select_for_update().get(pk=entity.pk)
    if partial and isinstance(data, Mapping):
        merged = issuing_entity_to_wire(entity)
        del merged["id"]
        if "invoice_prefix" in data:
            del merged["number_prefix"]
        if isinstance(data.get("address"), Mapping):
            data = {**data, "address": {**merged["address"], **data["address"]}}
        data = {**merged, **data}
    for name, value in issuing_entity_validate(data=data, entity=entity).items():
        setattr(entity, name, value)
    stamp(entity, user=user, note="Updated")
    entity.save()
    tax_rates_seed(country=entity.country)
    return entity


def issuing_entity_default_existing(*, currency: str) -> IssuingEntity | None:
    """The existing entity a contract without one would use; None when there is none yet.
    Raises ValidationError when several could issue it and the contract must name one."""
    active = list(IssuingEntity.objects.filter(is_active=True).order_by("created_at", "pk"))
    if len(active) == 1:
        return active[0]
    same_currency = [e for e in active if e.currency == currency]
    if len(same_currency) == 1:
        return same_currency[0]
    if active:
        names = ", ".join(f"{e.legal_name} (id {e.pk})" for e in active)
        raise ValidationError(
            {"issuing_entity": [f"Several issuing entities could issue this contract; name one of: {names}."]}
        )
    return None


def issuing_entity_default(*, currency: str) -> IssuingEntity:
    """The entity a contract uses when it names none.

    The only active entity, else the only active one in the contract's currency. A brand-new
    workspace has none yet: the API must still accept its first contract (DESIGN.md §5 posts
    contracts without an issuing entity), so one is created from the workspace's name, for an
    admin to complete with address, tax id and bank details.
    """
    entity = issuing_entity_default_existing(currency=currency)
    if entity is not None:
        return entity
    tenant = getattr(connection, "tenant", None)
    name = getattr(tenant, "name", "") or "Our company"
    entity = IssuingEntity(legal_name=name[:200], currency=currency, invoice_prefix="INV-")
    stamp(entity, note="Created for the first contract")
    entity.save()
    return entity
