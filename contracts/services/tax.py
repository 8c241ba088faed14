"""Tax configuration and the ORM side of ``revexos/tax.py``.

- Tax rates per tenant: created through one validation path (API, forms), seeded with the usual
  rates of an issuing entity's country the first time an entity in that country is saved
  (``DEFAULT_RATES``; editable like any other rate and listed under Settings → Tax rates).
- Tax ids are checked by format with python-stdnum (the VAT number module of the id's country
  prefix, else of the party's country).
- ``invoice_tax_compute`` loads what the pure determination needs for one invoice and calls it;
  the totals function of a draft stores the result.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from contracts.models import TaxCategory, TaxRate
from contracts.services._audit import stamp
from contracts.wire import COUNTRY_RE, FieldErrors, Reader
from revexos import tax as taxcore

RATE_KEYS = ("name", "country", "region", "category", "rate", "valid_from", "note")
REGION_RE = re.compile(r"^[A-Za-z0-9-]{1,20}$")
SEED_FROM = date(2000, 1, 1)

# Usual rates by country, seeded for an issuing entity's country: (category, percent, name).
# The US has none: sales tax is per state, and RevExOS collects none until a state rate is added.
DEFAULT_RATES: dict[str, list[tuple[str, str, str]]] = {
    "GB": [("standard", "20", "UK VAT 20%"), ("reduced", "5", "UK VAT 5%"), ("zero", "0", "UK VAT zero-rated 0%")],
    "DE": [("standard", "19", "DE USt 19%"), ("reduced", "7", "DE USt 7%"), ("zero", "0", "DE USt 0%")],
    "FR": [
        ("standard", "20", "FR TVA 20%"),
        ("reduced", "10", "FR TVA 10%"),
        ("super_reduced", "5.5", "FR TVA 5.5%"),
        ("zero", "0", "FR TVA 0%"),
    ],
    "NL": [("standard", "21", "NL BTW 21%"), ("reduced", "9", "NL BTW 9%"), ("zero", "0", "NL BTW 0%")],
    "IE": [("standard", "23", "IE VAT 23%"), ("reduced", "13.5", "IE VAT 13.5%"), ("zero", "0", "IE VAT 0%")],
    "ES": [
        ("standard", "21", "ES IVA 21%"),
        ("reduced", "10", "ES IVA 10%"),
        ("super_reduced", "4", "ES IVA 4%"),
        ("zero", "0", "ES IVA 0%"),
    ],
    "AU": [("standard", "10", "AU GST 10%"), ("zero", "0", "AU GST-free 0%")],
    "NZ": [("standard", "15", "NZ GST 15%"), ("zero", "0", "NZ GST zero-rated 0%")],
    "US": [],
}


# ----------------------------------------------------------------------------- tax ids


def _stdnum_module(country: str):
    from stdnum import get_cc_module

    country = country.lower()
    if country == "el":
        country = "gr"
    for name in ("vat", "ein"):
        module = get_cc_module(country, name)
        if module is not None:
            return module
    return None


def tax_id_problem(tax_id: str, *, country: str, check_digits: bool = True) -> str:
    """Why ``tax_id`` is not a valid tax id, or "" when it is, or when no format is known for the
    country. A VAT id's own prefix (DE…, FR…, EL…) wins over ``country``.

    Saving a customer or an entity checks the format only (``check_digits=False``): a number whose
    check digits do not verify may be a typo or a registry's test number (DESIGN.md's own examples
    are), so it is kept and flagged. Tax is decided on the full check: reverse charge needs a tax id
    whose check digits verify."""
    from stdnum.exceptions import InvalidChecksum
    from stdnum.exceptions import ValidationError as StdnumError

    raw = (tax_id or "").strip()
    if not raw:
        return ""
    prefix = raw[:2].upper()
    cc = prefix if prefix.isalpha() and (prefix in taxcore.VAT_COUNTRIES or prefix in ("EL", "XI")) else country
    if cc == "XI":  # Northern Ireland's VAT ids have the UK format
        cc = "GB"
    module = _stdnum_module(cc or "")
    if module is None:
        return ""
    try:
        module.validate(raw)
    except InvalidChecksum as exc:
        if not check_digits:
            return ""
        label = taxcore.country_name(cc.upper() if cc.upper() != "EL" else "GR")
        return f"The check digits of “{raw}” do not verify for {label} ({str(exc).rstrip('.')}): until it is corrected, the customer is taxed as one without a VAT id."
    except StdnumError as exc:
        label = taxcore.country_name(cc.upper() if cc.upper() != "EL" else "GR")
        return f"“{raw}” is not a valid tax id for {label}: {str(exc).rstrip('.')}. Check it against the customer's invoice or registration."
    return ""


# ----------------------------------------------------------------------------- rates


def tax_rate_validate(*, data: Any, rate: TaxRate | None = None) -> dict[str, Any]:
    errors = FieldErrors()
    if not isinstance(data, Mapping):
        raise ValidationError({"non_field_errors": ["Send the tax rate as an object."]})
    r = Reader(data, errors)
    r.unknown_keys(RATE_KEYS, ignore=("id",))
    values: dict[str, Any] = {
        "name": r.text("name", max_length=100, required=True),
        "country": r.text("country", max_length=2, required=True).upper(),
        "region": r.text("region", max_length=20).upper(),
        "category": r.choice("category", TaxCategory.values, default=TaxCategory.STANDARD, what="tax category"),
        "rate": r.percent("rate", required=True, label="rate"),
        "valid_from": r.date("valid_from", required=True),
        "note": r.text("note", max_length=200),
    }
    if values["country"] and not COUNTRY_RE.match(values["country"]):
        errors.add("country", f"“{values['country']}” is not a country code; use two letters (ISO 3166-1), e.g. GB.")
    if values["region"] and not REGION_RE.match(values["region"]):
        errors.add("region", "A region is a state or province code, e.g. NY or ON.")
    if values["rate"] is not None and values["rate"] > 100:
        errors.add("rate", "A tax rate is a percent between 0 and 100.")
    if not errors.has("valid_from") and values["valid_from"] and values["country"]:
        clash = TaxRate.objects.filter(
            country=values["country"],
            region=values["region"],
            category=values["category"],
            valid_from=values["valid_from"],
        )
        if rate is not None:
            clash = clash.exclude(pk=rate.pk)
        if clash.exists():
            errors.add(
                "valid_from",
                f"A {values['category']} rate for {values['country']}{'-' + values['region'] if values['region'] else ''} "
                f"already starts on {values['valid_from'].isoformat()}; change that one or pick another date.",
            )
    errors.raise_if_any()
    return values


@transaction.atomic
def tax_rate_create(*, data: Any, user=None) -> TaxRate:
    rate = TaxRate(**tax_rate_validate(data=data))
    stamp(rate, user=user, note="Created")
    rate.save()
    return rate


@transaction.atomic
def tax_rate_update(*, rate: TaxRate, data: Any, user=None) -> TaxRate:
    rate = TaxRate.objects.select_for_update().get(pk=rate.pk)
    for name, value in tax_rate_validate(data=data, rate=rate).items():
        setattr(rate, name, value)
    stamp(rate, user=user, note="Updated")
    rate.save()
    return rate


def tax_rates_seed(*, country: str) -> list[TaxRate]:
    """Add the usual rates of ``country`` when the tenant has none for it yet (idempotent)."""
    country = (country or "").upper()
    if country not in DEFAULT_RATES or TaxRate.objects.filter(country=country).exists():
        return []
    rows = [
        TaxRate(
            name=name,
            country=country,
            category=category,
            rate=Decimal(percent),
            valid_from=SEED_FROM,
            note="Seeded default: check it against your tax registration.",
        )
        for category, percent, name in DEFAULT_RATES[country]
    ]
    for row in rows:
        stamp(row, note="Seeded for the issuing entity's country")
        row.save()
    return rows


# ----------------------------------------------------------------------------- invoices


def rates_as_core(rates: Iterable[TaxRate]) -> list[taxcore.Rate]:
    return [
        taxcore.Rate(
            id=r.pk,
            name=r.name,
            country=r.country,
            region=r.region,
            category=r.category,
            percent=r.rate,
            valid_from=r.valid_from,
        )
        for r in rates
    ]


def rates_for(*, countries: Iterable[str]) -> list[taxcore.Rate]:
    return rates_as_core(TaxRate.objects.filter(country__in=[c for c in set(countries) if c]))


def customer_party(customer) -> taxcore.Party:
    note = "; ".join(
        p
        for p in (
            customer.tax_exempt_reason.strip(),
            f"certificate {customer.tax_exempt_certificate.strip()}" if customer.tax_exempt_certificate.strip() else "",
        )
        if p
    )
    tax_id = (
        customer.tax_id if customer.tax_id and not tax_id_problem(customer.tax_id, country=customer.country) else ""
    )
    return taxcore.Party(
        country=(customer.country or "").upper(),
        region=customer.region or "",
        tax_id=tax_id,
        exempt=customer.tax_exempt,
        exempt_note=note,
    )


def entity_party(entity) -> taxcore.Party:
    return taxcore.Party(country=(entity.country or "").upper(), region=entity.region or "", tax_id=entity.tax_id)


def line_categories(price_line_ids: Sequence[int | None]) -> dict[int, str]:
    from contracts.models import PriceLine

    ids = {i for i in price_line_ids if i}
    if not ids:
        return {}
    return dict(PriceLine.objects.filter(pk__in=ids).values_list("pk", "tax_category"))


def invoice_tax_compute(
    *,
    entity,
    customer,
    lines: Sequence[tuple[Any, int | None, Decimal]],
    on: date,
    currency: str,
    rates=None,
    categories: dict[int, str] | None = None,
) -> taxcore.TaxResult:
    """Tax of one invoice: ``lines`` are ``(key, price_line_id, net amount after discounts)``.

    ``rates`` and ``categories`` (``line_categories``) may be passed preloaded by callers that price
    many invoices at once (a billing run's chunk: one query each, not one per invoice).
    """
    if categories is None:
        categories = line_categories([pl for _, pl, _ in lines])
    if rates is None:
        rates = rates_for(countries=[entity.country, customer.country])
    return taxcore.invoice_tax(
        entity=entity_party(entity),
        customer=customer_party(customer),
        lines=[
            taxcore.TaxableLine(key=key, category=categories.get(pl, TaxCategory.STANDARD), net=net)
            for key, pl, net in lines
        ],
        rates=rates,
        on=on,
        currency=currency,
    )


def tax_lines_to_json(result: taxcore.TaxResult) -> list[dict]:
    """The tax summary as stored on the invoice and returned as ``tax_lines`` (DESIGN.md §5.1)."""
    return [
        {
            "name": t.name,
            "rate": format(t.percent.normalize(), "f"),
            "category": t.category,
            "country": t.country,
            "taxable": str(t.taxable),
            "amount": str(t.amount),
            "reverse_charge": t.reverse_charge,
            "lines": list(t.line_keys),
        }
        for t in result.lines
    ]
