"""Forms of the contracts UI.

They render inputs and carry errors back to them; they do not validate. Every form's values are
turned into the wire form of DESIGN.md §5 and handed to the same service the API uses, whose
ValidationError (``price_lines.2.amount``) is mapped back onto the inputs. So there is one set
of rules and the UI, the API and the CSV import can never disagree.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from contracts.models import (
    Aggregation,
    BillingAnchor,
    ChargeModel,
    ContractStatus,
    Customer,
    Frequency,
    IssuingEntity,
    PriceLineKind,
    TaxCategory,
    Timing,
)
from contracts.wire import LINE_FIELDS, LINE_OPTIONAL_FIELDS, USAGE_MODEL_FIELDS
from revexos.money import CURRENCIES


def _text(label: str, help_text: str = "", **attrs) -> forms.CharField:
    return forms.CharField(label=label, required=False, help_text=help_text, widget=forms.TextInput(attrs=attrs))


def _select(label: str, choices, help_text: str = "") -> forms.CharField:
    return forms.CharField(label=label, required=False, help_text=help_text, widget=forms.Select(choices=choices))


def _date(label: str, help_text: str = "") -> forms.CharField:
    return forms.CharField(
        label=label, required=False, help_text=help_text, widget=forms.DateInput(attrs={"type": "date"})
    )


def _check(label: str, help_text: str = "") -> forms.BooleanField:
    return forms.BooleanField(label=label, required=False, help_text=help_text)


def _users():
    from revexos.accounts.models import User

    return [("", "— nobody —")] + [
        (u.email, u.get_full_name()) for u in User.objects.filter(is_active=True).order_by("full_name", "email")
    ]


class ServiceForm(forms.Form):
    """A form whose fields never fail on their own: the service decides what is valid."""

    # Service field name -> form field name, for errors whose names differ.
    error_map: dict[str, str] = {}

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)

    def add_service_errors(self, exc: ValidationError) -> dict[str, list[str]]:
        """Attach the service's errors to fields; return those that belong to no field here."""
        self.is_valid()
        rest: dict[str, list[str]] = {}
        for name, messages in exc.message_dict.items():
            target = self.error_map.get(name, name)
            if target in self.fields:
                self.add_error(target, messages)
            else:
                rest[name] = messages
        return rest


class CustomerForm(ServiceForm):
    external_id = _text("External id", "Your id for the customer, e.g. acme-ltd. The API and CSV imports use it.")
    legal_name = _text("Legal name")
    currency = _select("Currency", CURRENCIES)
    billing_emails = forms.CharField(
        label="Billing e-mails",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Invoices go to these addresses; separate them with commas or new lines.",
    )
    tax_id = _text(
        "Tax id",
        "VAT or tax number, checked by format, e.g. DE136695976. A business abroad with one is reverse-charged.",
    )
    tax_exempt = _check("Tax exempt", "Never taxed; the reason or certificate is printed on its invoices.")
    tax_exempt_reason = _text("Exemption reason", "e.g. registered charity, resale")
    tax_exempt_certificate = _text("Exemption certificate number")
    address_line1 = _text("Address line 1")
    address_line2 = _text("Address line 2")
    city = _text("City")
    region = _text("State / region")
    postal_code = _text("Postal code")
    country = _text("Country", "Two letters, e.g. GB or US.", maxlength=2)
    crm_id = _text("CRM id")
    accounting_id = _text("Accounting id")
    stripe_customer_id = _text("Stripe customer id")
    owner = _select("Account manager", [])
    is_active = _check("Active")

    error_map = {
        "address.line1": "address_line1",
        "address.line2": "address_line2",
        "address.city": "city",
        "address.region": "region",
        "address.postal_code": "postal_code",
        "address.country": "country",
    }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].widget.choices = _users()

    @classmethod
    def initial_for(cls, customer: Customer | None) -> dict[str, Any]:
        if customer is None:
            return {"currency": "USD", "is_active": True}
        from contracts.wire import customer_to_wire

        wire = customer_to_wire(customer)
        initial = {k: v for k, v in wire.items() if k in cls.base_fields}
        initial["billing_emails"] = "\n".join(wire["billing_emails"])
        initial.update(
            {
                f: getattr(customer, f)
                for f in ("address_line1", "address_line2", "city", "region", "postal_code", "country")
            }
        )
        initial["owner"] = wire["owner"] or ""
        return initial

    def to_wire(self) -> dict[str, Any]:
        self.is_valid()
        d = self.cleaned_data
        return {
            "external_id": d["external_id"],
            "legal_name": d["legal_name"],
            "currency": d["currency"],
            "billing_emails": d["billing_emails"],
            "tax_id": d["tax_id"],
            "tax_exempt": d["tax_exempt"],
            "tax_exempt_reason": d["tax_exempt_reason"],
            "tax_exempt_certificate": d["tax_exempt_certificate"],
            "address": {
                "line1": d["address_line1"],
                "line2": d["address_line2"],
                "city": d["city"],
                "region": d["region"],
                "postal_code": d["postal_code"],
                "country": d["country"],
            },
            "crm_id": d["crm_id"],
            "accounting_id": d["accounting_id"],
            "stripe_customer_id": d["stripe_customer_id"],
            "owner": d["owner"],
            "is_active": d["is_active"],
        }


class IssuingEntityForm(ServiceForm):
    legal_name = _text("Legal name")
    invoice_prefix = _text(
        "Invoice number prefix", "Invoice numbers read <prefix><year>-<sequence>, e.g. INV-2026-000042."
    )
    currency = _select("Default currency", CURRENCIES)
    tax_id = _text("Tax id")
    email = _text("Billing contact e-mail")
    address_line1 = _text("Address line 1")
    address_line2 = _text("Address line 2")
    city = _text("City")
    region = _text("State / region")
    postal_code = _text("Postal code")
    country = _text("Country", "Two letters, e.g. GB.", maxlength=2)
    bank_details = forms.CharField(
        label="Bank details",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Printed on invoices as payment instructions.",
    )
    is_active = _check("Active", "Inactive entities issue no new contracts.")

    error_map = CustomerForm.error_map

    @classmethod
    def initial_for(cls, entity: IssuingEntity | None) -> dict[str, Any]:
        if entity is None:
            return {"currency": "USD", "is_active": True}
        return {name: getattr(entity, name) for name in cls.base_fields}

    def to_wire(self) -> dict[str, Any]:
        self.is_valid()
        d = self.cleaned_data
        return {
            "legal_name": d["legal_name"],
            "invoice_prefix": d["invoice_prefix"],
            "currency": d["currency"],
            "tax_id": d["tax_id"],
            "email": d["email"],
            "bank_details": d["bank_details"],
            "is_active": d["is_active"],
            "address": {
                "line1": d["address_line1"],
                "line2": d["address_line2"],
                "city": d["city"],
                "region": d["region"],
                "postal_code": d["postal_code"],
                "country": d["country"],
            },
        }


class TaxRateForm(ServiceForm):
    name = _text("Name", "Shown on invoices and exported as the tax type, e.g. UK VAT 20%.")
    country = _text("Country", "Two letters, e.g. GB.", maxlength=2)
    region = _text("State / province", "Only for a state or province rate, e.g. NY.")
    category = _select("Category", TaxCategory.choices)
    rate = _text("Rate %", "e.g. 20", inputmode="decimal")
    valid_from = _date("Valid from", "Applies to invoices issued on or after this date.")
    note = _text("Note")

    @classmethod
    def initial_for(cls, rate) -> dict[str, Any]:
        if rate is None:
            return {"category": TaxCategory.STANDARD}
        return {
            "name": rate.name,
            "country": rate.country,
            "region": rate.region,
            "category": rate.category,
            "rate": format(rate.rate, "f"),
            "valid_from": rate.valid_from.isoformat(),
            "note": rate.note,
        }

    def to_wire(self) -> dict[str, Any]:
        self.is_valid()
        return {
            k: self.cleaned_data[k] for k in ("name", "country", "region", "category", "rate", "valid_from", "note")
        }


class ContractForm(ServiceForm):
    """The contract's own fields and its terms (the price lines are rows beside it)."""

    number = _text("Contract number", "Unique, e.g. C-1001.")
    title = _text("Title")
    customer = _select("Customer", [])
    issuing_entity = _select("Issuing entity", [], "The legal entity of yours that invoices this contract.")
    status = _select(
        "Status", [(ContractStatus.ACTIVE, "Active (signed)"), (ContractStatus.DRAFT, "Draft (not billed yet)")]
    )
    owner = _select("Owner", [])
    start_date = _date("Start date")
    end_date = _date("End date", "Leave empty for an open-ended contract.")
    auto_renew = _check("Renews automatically")
    renewal_term_months = _text("Renewal term (months)", inputmode="numeric")
    notice_period_days = _text("Notice period (days)", inputmode="numeric")
    renewal_uplift_pct = _text("Renewal uplift %", inputmode="decimal")
    renewal_lead_days = _text(
        "Alert lead time (days)",
        "How long before the notice deadline the owner is alerted. The alert comes at the renewal "
        "window or at notice period + lead time before the end, whichever is earlier.",
        inputmode="numeric",
    )
    billed_through = _date(
        "Billed elsewhere through",
        "Moving from another billing system? The last day it billed: RevExOS bills only the periods after it.",
    )
    signed_document = forms.FileField(
        label="Signed document", required=False, help_text="PDF, Word or image, up to 20 MB."
    )
    # Terms (versioned)
    currency = _select("Currency", CURRENCIES)
    payment_terms_days = _text("Payment terms (days)", inputmode="numeric")
    billing_anchor = _select("Billing anchor", BillingAnchor.choices)
    po_number = _text("PO number")
    po_required = _check("A PO number is required on invoices")

    HEADER = (
        "number",
        "title",
        "customer",
        "issuing_entity",
        "status",
        "owner",
        "start_date",
        "end_date",
        "auto_renew",
        "renewal_term_months",
        "notice_period_days",
        "renewal_uplift_pct",
        "renewal_lead_days",
        "billed_through",
    )
    TERMS = ("currency", "payment_terms_days", "billing_anchor", "po_number", "po_required")

    def __init__(self, *args, full_status: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["customer"].widget.choices = [("", "— choose a customer —")] + [
            (str(c.pk), f"{c.legal_name} ({c.external_id})")
            for c in Customer.objects.filter(is_active=True).order_by("legal_name")
        ]
        self.fields["issuing_entity"].widget.choices = [("", "— default —")] + [
            (str(e.pk), e.legal_name) for e in IssuingEntity.objects.filter(is_active=True).order_by("legal_name")
        ]
        self.fields["owner"].widget.choices = _users()
        if full_status:
            self.fields["status"].widget.choices = ContractStatus.choices

    @classmethod
    def initial_for(cls, contract=None, version=None) -> dict[str, Any]:
        if contract is None:
            return {
                "status": ContractStatus.ACTIVE,
                "currency": "USD",
                "payment_terms_days": "30",
                "billing_anchor": "calendar",
                "renewal_term_months": "12",
                "notice_period_days": "30",
                "renewal_uplift_pct": "0",
                "renewal_lead_days": "30",
            }
        from contracts.wire import contract_to_wire

        wire = contract_to_wire(contract, version)
        initial = {k: ("" if v is None else v) for k, v in wire.items() if k in cls.base_fields}
        initial["customer"] = str(contract.customer_id)
        initial["issuing_entity"] = str(contract.issuing_entity_id)
        return initial

    def header_wire(self) -> dict[str, Any]:
        self.is_valid()
        d = self.cleaned_data
        return {k: d[k] for k in self.HEADER}

    def terms_wire(self) -> dict[str, Any]:
        self.is_valid()
        d = self.cleaned_data
        return {k: d[k] for k in self.TERMS}


class AmendmentForm(ServiceForm):
    effective_from = _date("Effective from", "The first day the new terms govern billing.")
    reason = _text("Reason", "Why the terms change, e.g. “Scope extended to EU region”.")
    currency = _select("Currency", CURRENCIES)
    payment_terms_days = _text("Payment terms (days)", inputmode="numeric")
    billing_anchor = _select("Billing anchor", BillingAnchor.choices)
    po_number = _text("PO number")
    po_required = _check("A PO number is required on invoices")

    def changes_wire(self) -> dict[str, Any]:
        self.is_valid()
        d = self.cleaned_data
        return {
            k: d[k] for k in ("reason", "currency", "payment_terms_days", "billing_anchor", "po_number", "po_required")
        }


class ImportForm(forms.Form):
    file = forms.FileField(
        label="CSV file", required=False, help_text="UTF-8, comma separated, with the header row of the template."
    )


# ----------------------------------------------------------------------------- price line rows

FIELD_LABELS = {
    "tax_category": "Tax category",
    "amount": "Amount",
    "bill_on": "Bill on",
    "frequency": "Frequency",
    "timing": "Timing",
    "included_hours": "Included hours",
    "overage_rate": "Overage rate / h",
    "reference": "Project reference",
    "expected_date": "Expected date",
    "percent_of_fixed_fee": "or % of fixed fee",
    "cap": "Not-to-exceed cap",
    "metric": "Metric code",
    "charge_model": "Charge model",
    "aggregation": "Aggregation",
    "aggregation_property": "Counted property",
    "free_units": "Free units",
    "minimum_commitment": "Minimum commitment",
    "threshold_amount": "Interim invoice at",
    "unit_amount": "Unit price",
    "package_size": "Package size",
    "rate": "Rate %",
    "fixed_amount": "Fixed fee / transaction",
    "per_transaction_min": "Min / transaction",
    "per_transaction_max": "Max / transaction",
    "free_amount": "Free amount",
}
FIELD_HELP = {
    "free_units": "Units (or transactions) not charged each period.",
    "threshold_amount": "Optional: interim invoice when unbilled usage reaches this.",
    "percent_of_fixed_fee": "Instead of an amount: a share of the fixed fee.",
    "reference": "Its key in the project tool, e.g. PROJ-12.",
    "metric": "As usage events name it, e.g. api_calls.",
}
CHOICES = {
    "tax_category": TaxCategory.choices,
    "frequency": Frequency.choices,
    "timing": Timing.choices,
    "charge_model": ChargeModel.choices,
    "aggregation": Aggregation.choices,
}
DATE_FIELDS = {"bill_on", "expected_date"}
KIND_HINTS = {
    PriceLineKind.FIXED_FEE: "A one-off fee, billed on a date.",
    PriceLineKind.RECURRING: "A retainer or subscription billed every period.",
    PriceLineKind.MILESTONE: "Billed when the milestone is delivered.",
    PriceLineKind.TIME_AND_MATERIALS: "Hours billed at the rate card, under an optional cap.",
    PriceLineKind.USAGE: "Metered usage priced by a charge model.",
}
SCALAR_FIELDS = tuple(FIELD_LABELS)


def new_token() -> str:
    return secrets.token_hex(4)


@dataclass
class RowField:
    name: str
    label: str
    value: str
    kind: str  # text | date | select
    options: list = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    help: str = ""


@dataclass
class SubRow:
    token: str
    values: dict[str, str]
    errors: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class LineRow:
    token: str
    kind: str
    charge_model: str
    description: str
    line_ref: str
    fields: list[RowField]
    tiers: list[SubRow]
    rates: list[SubRow]
    tier_price_field: str  # unit_amount | rate
    errors: dict[str, list[str]] = field(default_factory=dict)
    has_tiers: bool = False
    has_rates: bool = False

    @property
    def kind_hint(self) -> str:
        return KIND_HINTS.get(self.kind, "")

    @property
    def general_errors(self) -> list[str]:
        return self.errors.get("", [])

    @property
    def tier_errors(self) -> list[str]:
        return self.errors.get("tiers", [])

    @property
    def rate_errors(self) -> list[str]:
        return self.errors.get("rates", [])


def _str(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def line_row(*, token: str, values: dict[str, Any], errors: dict[str, list[str]] | None = None) -> LineRow:
    """A price line row for the editor, from wire-like values (strings) and its errors."""
    errors = errors or {}
    kind = values.get("kind") or PriceLineKind.RECURRING
    charge_model = values.get("charge_model") or (ChargeModel.PER_UNIT if kind == PriceLineKind.USAGE else "")
    names = list(LINE_FIELDS.get(kind, ())) + list(LINE_OPTIONAL_FIELDS.get(kind, ()))
    if kind == PriceLineKind.USAGE:
        names += list(USAGE_MODEL_FIELDS.get(charge_model, ()))
    names.append("tax_category")
    defaults = {
        "tax_category": TaxCategory.STANDARD,
        "frequency": "monthly",
        "timing": "advance",
        "aggregation": "sum",
        "free_units": "0",
        "minimum_commitment": "0",
    }
    fields_out = []
    for name in names:
        if name in ("tiers", "rates"):
            continue
        kind_of_input = "select" if name in CHOICES else ("date" if name in DATE_FIELDS else "text")
        label = FIELD_LABELS.get(name, name)
        if kind == PriceLineKind.USAGE and charge_model == ChargeModel.PACKAGE and name == "amount":
            label = "Price per package"
        if kind == PriceLineKind.RECURRING and name == "amount":
            label = "Amount per period"
        value = values.get(name)
        if value in (None, "") and name in defaults:
            value = defaults[name]
        fields_out.append(
            RowField(
                name=name,
                label=label,
                value=_str(value),
                kind=kind_of_input,
                options=CHOICES.get(name, []),
                errors=errors.get(name, []),
                help=FIELD_HELP.get(name, ""),
            )
        )
    has_tiers = kind == PriceLineKind.USAGE and "tiers" in USAGE_MODEL_FIELDS.get(charge_model, ())
    has_rates = kind == PriceLineKind.TIME_AND_MATERIALS
    price_field = "rate" if charge_model == ChargeModel.GRADUATED_PERCENTAGE else "unit_amount"
    tiers = []
    if has_tiers:
        raw_tiers = values.get("tiers") or [
            {"up_to": "", price_field: "", "flat_amount": ""},
            {"up_to": None, price_field: "", "flat_amount": ""},
        ]
        for index, tier in enumerate(raw_tiers):
            tiers.append(
                SubRow(
                    token=new_token(),
                    values={
                        "up_to": _str(tier.get("up_to")),
                        "price": _str(tier.get(price_field)),
                        "flat_amount": _str(tier.get("flat_amount")),
                    },
                    errors={
                        ("price" if k == price_field else k): v
                        for k, v in _sub_errors(errors, f"tiers.{index}.").items()
                    },
                )
            )
    rates = []
    if has_rates:
        raw_rates = values.get("rates") or [{"role": "", "hourly_rate": ""}]
        for index, rate in enumerate(raw_rates):
            rates.append(
                SubRow(
                    token=new_token(),
                    values={"role": _str(rate.get("role")), "hourly_rate": _str(rate.get("hourly_rate"))},
                    errors=_sub_errors(errors, f"rates.{index}."),
                )
            )
    return LineRow(
        token=token,
        kind=kind,
        charge_model=charge_model,
        description=_str(values.get("description")),
        line_ref=_str(values.get("line_ref")),
        fields=fields_out,
        tiers=tiers,
        rates=rates,
        tier_price_field=price_field,
        errors=errors,
        has_tiers=has_tiers,
        has_rates=has_rates,
    )


def _sub_errors(errors: dict[str, list[str]], prefix: str) -> dict[str, list[str]]:
    return {k[len(prefix) :]: v for k, v in errors.items() if k.startswith(prefix)}


def row_values_from_post(data, token: str) -> dict[str, Any]:
    """Everything posted for one row, as strings, tiers and rates as lists (before kind filtering)."""
    prefix = f"pl-{token}-"
    values: dict[str, Any] = {
        "kind": data.get(prefix + "kind", ""),
        "description": data.get(prefix + "description", ""),
        "line_ref": data.get(prefix + "line_ref", ""),
    }
    for name in SCALAR_FIELDS:
        if prefix + name in data:
            values[name] = data.get(prefix + name, "")
    tiers = []
    for tier_token in data.getlist(prefix + "tier"):
        tp = f"{prefix}tier-{tier_token}-"
        price = data.get(tp + "price", "")
        tiers.append(
            {
                "up_to": data.get(tp + "up_to", ""),
                "unit_amount": price,
                "rate": price,
                "flat_amount": data.get(tp + "flat_amount", ""),
            }
        )
    if tiers:
        values["tiers"] = tiers
    rates = []
    for rate_token in data.getlist(prefix + "rate_row"):
        rp = f"{prefix}rate-{rate_token}-"
        rates.append({"role": data.get(rp + "role", ""), "hourly_rate": data.get(rp + "hourly_rate", "")})
    if rates:
        values["rates"] = rates
    return values


def row_to_wire(values: dict[str, Any]) -> dict[str, Any]:
    """Only the keys the row's kind and charge model use; blanks left out so defaults apply."""
    kind = values.get("kind", "")
    charge_model = values.get("charge_model", "")
    allowed = (
        "kind",
        "description",
        "line_ref",
        "tax_category",
        *tuple(LINE_FIELDS.get(kind, ())),
        *tuple(LINE_OPTIONAL_FIELDS.get(kind, ())),
    )
    if kind == PriceLineKind.USAGE:
        allowed += tuple(USAGE_MODEL_FIELDS.get(charge_model, ()))
    wire: dict[str, Any] = {}
    for key in allowed:
        value = values.get(key)
        if key == "tiers":
            price = "rate" if charge_model == ChargeModel.GRADUATED_PERCENTAGE else "unit_amount"
            wire["tiers"] = [
                {
                    "up_to": t.get("up_to") or None,
                    price: t.get(price, ""),
                    **({"flat_amount": t["flat_amount"]} if t.get("flat_amount") else {}),
                }
                for t in (value or [])
                if any(str(v).strip() for v in t.values() if v is not None)
            ]
        elif key == "rates":
            wire["rates"] = [
                r for r in (value or []) if (r.get("role") or "").strip() or (r.get("hourly_rate") or "").strip()
            ]
        elif isinstance(value, str) and value.strip() == "":
            continue
        elif value is not None:
            wire[key] = value
    if kind in (PriceLineKind.USAGE,) and "tiers" in allowed and "tiers" not in wire:
        wire["tiers"] = []
    return wire


def lines_from_post(data) -> tuple[list[str], list[dict[str, Any]]]:
    """(row tokens, wire lines) in the order the rows appear on the page."""
    tokens = [t for t in data.getlist("pl") if t]
    return tokens, [row_to_wire(row_values_from_post(data, t)) for t in tokens]


def rows_for(lines: list[dict[str, Any]], errors: dict[str, list[str]] | None = None) -> list[LineRow]:
    """Editor rows for wire lines; ``errors`` are the service's, named ``price_lines.<i>.<field>``."""
    errors = errors or {}
    rows = []
    for index, line in enumerate(lines):
        prefix = f"price_lines.{index}."
        own = {k[len(prefix) :]: v for k, v in errors.items() if k.startswith(prefix)}
        if f"price_lines.{index}" in errors:
            own[""] = errors[f"price_lines.{index}"]
        rows.append(line_row(token=new_token(), values=line, errors=own))
    return rows
