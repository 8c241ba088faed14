"""The wire form of customers and contracts (DESIGN.md §5) and the one place it is validated.

The API posts this shape as JSON, the UI's forms and the CSV import build the same dicts from
their inputs, and all of them go through the readers here and then the services, so a rule lives
in one place and every door reports the same error under the same field name. Nested fields are
named by path: ``price_lines.0.amount``, ``price_lines.4.tiers.1.up_to``, ``address.country``.

Money on the wire
    Amounts, rates and quantities are decimal strings: ``"3100.00"``. JSON integers are taken as
    exact (``3100`` means ``"3100"``); JSON numbers with a fraction are refused, because a float
    has already lost the value before we see it. Exponents (``1e3``) are refused too. Values keep
    the digits the client sent (the columns are scale-free ``numeric``), so a contract reads back
    exactly as it was posted.

Nothing here queries the database: references (customer, issuing entity, owner) and uniqueness
are resolved by the services.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from contracts.models import (
    Aggregation,
    BillingAnchor,
    ChargeModel,
    ContractStatus,
    Frequency,
    PriceLine,
    PriceLineKind,
    PriceTier,
    RateCardEntry,
    TaxCategory,
    Timing,
)
from revexos.money import MINOR_UNITS
from revexos.parsing import parse_date, parse_int, ref_or_error
from revexos.pricing import Tier, validate_tiers

# ----------------------------------------------------------------------------- field sets

# Keys of each price line kind, as posted and as read back (DESIGN.md §5). Always written out.
LINE_FIELDS: dict[str, tuple[str, ...]] = {
    PriceLineKind.FIXED_FEE: ("amount", "bill_on"),
    PriceLineKind.RECURRING: ("amount", "frequency", "timing", "included_hours", "overage_rate"),
    PriceLineKind.MILESTONE: ("amount", "reference", "expected_date"),
    PriceLineKind.TIME_AND_MATERIALS: ("rates", "cap"),
    PriceLineKind.USAGE: ("metric", "frequency", "charge_model", "free_units", "minimum_commitment"),
}
# Keys a kind accepts but only writes out when set.
LINE_OPTIONAL_FIELDS: dict[str, tuple[str, ...]] = {
    # A fixed fee's budget: hours logged beyond it raise a review task (it bills nothing more).
    PriceLineKind.FIXED_FEE: ("included_hours",),
    PriceLineKind.MILESTONE: ("percent_of_fixed_fee",),
    PriceLineKind.USAGE: ("aggregation", "aggregation_property", "threshold_amount"),
}
USAGE_MODEL_FIELDS: dict[str, tuple[str, ...]] = {
    ChargeModel.PER_UNIT: ("unit_amount",),
    ChargeModel.GRADUATED: ("tiers",),
    ChargeModel.VOLUME: ("tiers",),
    ChargeModel.PACKAGE: ("package_size", "amount"),
    ChargeModel.PERCENTAGE: ("rate", "fixed_amount", "per_transaction_min", "per_transaction_max", "free_amount"),
    ChargeModel.GRADUATED_PERCENTAGE: ("tiers",),
}
TIER_FIELDS = {
    "unit": ("up_to", "unit_amount", "flat_amount"),
    "rate": ("up_to", "rate", "flat_amount"),
}
TERMS_FIELDS = ("currency", "payment_terms_days", "po_number", "po_required", "billing_anchor")
CONTRACT_FIELDS = (
    "customer",
    "number",
    "title",
    "status",
    "issuing_entity",
    "owner",
    "start_date",
    "end_date",
    "auto_renew",
    "renewal_term_months",
    "notice_period_days",
    "renewal_uplift_pct",
    "renewal_window_days",
    "renewal_lead_days",
    "auto_issue",
    "billed_through",
)
# Read-only keys of a contract as read; accepted (and ignored) when a read contract is posted back.
CONTRACT_READ_ONLY = ("id", "current_version")
ADDRESS_KEYS = ("line1", "line2", "city", "region", "postal_code", "country")
ADDRESS_MODEL_FIELDS = {
    "line1": "address_line1",
    "line2": "address_line2",
    "city": "city",
    "region": "region",
    "postal_code": "postal_code",
    "country": "country",
}

MAX_INTEGER_DIGITS = 14
MAX_DECIMAL_PLACES = 6
# ASCII digits only: \d would also match "٣" or "²", which Decimal() and int() accept or choke on.
_DECIMAL_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$", re.ASCII)
_GROUPED_RE = re.compile(r"^\d{1,3}(,\d{3})+(\.\d+)?$", re.ASCII)
METRIC_RE = re.compile(r"^[a-z0-9][a-z0-9_.:-]*$")
LINE_REF_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")
EXTERNAL_ID_RE = re.compile(r"^[^\s/?#]+$")
COUNTRY_RE = re.compile(r"^[A-Z]{2}$")
CURRENCY_CODES = frozenset(MINOR_UNITS)


# ----------------------------------------------------------------------------- errors


class FieldErrors:
    """Collects every problem of a payload, by field path, before anything is written."""

    def __init__(self) -> None:
        self.errors: dict[str, list[str]] = {}

    def add(self, name: str, message: str) -> None:
        messages = self.errors.setdefault(name or "non_field_errors", [])
        if message not in messages:
            messages.append(message)

    def merge(self, exc: ValidationError, prefix: str = "") -> None:
        if hasattr(exc, "error_dict"):
            for name, messages in exc.message_dict.items():
                for message in messages:
                    self.add(
                        f"{prefix}{name}" if name != "__all__" else prefix.rstrip(".") or "non_field_errors", message
                    )
        else:
            for message in exc.messages:
                self.add(prefix.rstrip(".") or "non_field_errors", message)

    def __bool__(self) -> bool:
        return bool(self.errors)

    def has(self, name: str) -> bool:
        return name in self.errors

    def raise_if_any(self) -> None:
        if self.errors:
            raise ValidationError(self.errors)


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


def parse_decimal(value: Any) -> Decimal:
    """A wire decimal: a plain decimal string or a JSON integer. Raises ValueError with a reason."""
    if isinstance(value, bool):
        raise ValueError('Enter a number as a decimal string such as "3100.00", not true/false.')
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("Enter a finite number.")
        return value
    if isinstance(value, float):
        raise ValueError(
            'Send amounts and quantities as decimal strings such as "3100.00"; JSON numbers with a '
            "fraction are not accepted because they are binary floats."
        )
    if not isinstance(value, str):
        raise ValueError('Enter a number as a decimal string such as "3100.00".')
    text = value.strip()
    if _GROUPED_RE.match(text):  # "3,100.00" typed into a form or a spreadsheet
        text = text.replace(",", "")
    if not _DECIMAL_RE.match(text):
        raise ValueError(f"“{value}” is not a number; enter digits with an optional decimal point, e.g. 3100.00.")
    try:
        return Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern already guards this
        raise ValueError(f"“{value}” is not a number.") from None


class Reader:
    """Reads fields of one mapping, reporting each problem under ``prefix + key``."""

    def __init__(self, data: Mapping[str, Any], errors: FieldErrors, prefix: str = "") -> None:
        self.data = data if isinstance(data, Mapping) else {}
        self.errors = errors
        self.prefix = prefix

    def name(self, key: str) -> str:
        return f"{self.prefix}{key}"

    def has(self, key: str) -> bool:
        return key in self.data

    def present(self, key: str) -> bool:
        return not _blank(self.data.get(key))

    def raw(self, key: str) -> Any:
        return self.data.get(key)

    def _missing(self, key: str, required: bool, what: str = "This field") -> None:
        if required:
            self.errors.add(self.name(key), f"{what} is required.")

    def decimal(
        self,
        key: str,
        *,
        required: bool = False,
        default: Decimal | None = None,
        positive: bool = False,
        maximum: Decimal | None = None,
        label: str = "value",
    ) -> Decimal | None:
        value = self.data.get(key)
        if _blank(value):
            self._missing(key, required)
            return default
        try:
            number = parse_decimal(value)
        except ValueError as exc:
            self.errors.add(self.name(key), str(exc))
            return default
        _sign, digits, exponent = number.as_tuple()
        places = max(0, -exponent)
        integer_digits = max(0, len(digits) + exponent)
        if number < 0:
            self.errors.add(self.name(key), f"The {label} must not be negative.")
        elif positive and number == 0:
            self.errors.add(self.name(key), f"The {label} must be greater than 0.")
        elif places > MAX_DECIMAL_PLACES:
            self.errors.add(self.name(key), f"Use at most {MAX_DECIMAL_PLACES} decimal places.")
        elif integer_digits > MAX_INTEGER_DIGITS:
            self.errors.add(
                self.name(key), f"The {label} is too large (at most {MAX_INTEGER_DIGITS} digits before the point)."
            )
        elif maximum is not None and number > maximum:
            self.errors.add(self.name(key), f"The {label} must not be more than {maximum}.")
        else:
            return number
        return default

    def money(self, key: str, **kwargs) -> Decimal | None:
        kwargs.setdefault("label", "amount")
        return self.decimal(key, **kwargs)

    def percent(self, key: str, **kwargs) -> Decimal | None:
        kwargs.setdefault("label", "percentage")
        kwargs.setdefault("maximum", Decimal(100))
        return self.decimal(key, **kwargs)

    def integer(
        self, key: str, *, required: bool = False, default: int | None = None, minimum: int = 0, maximum: int = 32767
    ) -> int | None:
        value = self.data.get(key)
        if _blank(value):
            self._missing(key, required)
            return default
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            self.errors.add(self.name(key), "Enter a whole number.")
            return default
        if isinstance(value, str):
            try:
                value = parse_int(value)
            except ValueError:
                self.errors.add(self.name(key), f"“{value[:40]}” is not a whole number.")
                return default
        if not isinstance(value, (int, float)):
            self.errors.add(self.name(key), "Enter a whole number.")
            return default
        value = int(value)
        if value < minimum or value > maximum:
            self.errors.add(self.name(key), f"Enter a whole number from {minimum} to {maximum}.")
            return default
        return value

    def boolean(self, key: str, *, default: bool | None = False, nullable: bool = False) -> bool | None:
        value = self.data.get(key)
        if _blank(value):
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in {"true", "yes", "1", "on", "y"}:
            return True
        if isinstance(value, str) and value.strip().lower() in {"false", "no", "0", "off", "n"}:
            return False
        self.errors.add(self.name(key), "Enter true or false.")
        return default

    def date(self, key: str, *, required: bool = False) -> date | None:
        value = self.data.get(key)
        if _blank(value):
            self._missing(key, required)
            return None
        try:
            return parse_date(value)
        except ValueError as exc:
            self.errors.add(self.name(key), str(exc))
        return None

    def choice(
        self, key: str, choices: Iterable[str], *, required: bool = False, default: str = "", what: str = "value"
    ) -> str:
        value = self.data.get(key)
        if _blank(value):
            self._missing(key, required)
            return default
        options = list(choices)
        if not isinstance(value, str) or value.strip() not in options:
            self.errors.add(self.name(key), f"“{value}” is not a valid {what}; use one of: {', '.join(options)}.")
            return default
        return value.strip()

    def text(
        self,
        key: str,
        *,
        max_length: int,
        required: bool = False,
        default: str = "",
        pattern: re.Pattern | None = None,
        pattern_message: str = "",
    ) -> str:
        value = self.data.get(key)
        if _blank(value):
            self._missing(key, required)
            return default
        if not isinstance(value, str):
            self.errors.add(self.name(key), "Enter text.")
            return default
        if "\x00" in value:
            self.errors.add(self.name(key), "Text must not contain NUL (\\u0000) characters.")
            return default
        value = value.strip()
        if len(value) > max_length:
            self.errors.add(self.name(key), f"Use at most {max_length} characters (this has {len(value)}).")
            return default
        if pattern is not None and not pattern.match(value):
            self.errors.add(self.name(key), pattern_message or "This value has characters that are not allowed.")
            return default
        return value

    def currency(self, key: str, *, required: bool = False, default: str = "") -> str:
        value = self.data.get(key)
        if _blank(value):
            self._missing(key, required)
            return default
        if not isinstance(value, str):
            self.errors.add(self.name(key), "Enter the currency as a three-letter ISO 4217 code such as USD.")
            return default
        code = value.strip().upper()
        if code not in CURRENCY_CODES:
            self.errors.add(
                self.name(key),
                f"“{value[:20]}” is not a supported currency; use an ISO 4217 code such as USD, EUR or GBP.",
            )
            return default
        return code

    def email(self, key: str, *, required: bool = False) -> str:
        value = self.text(key, max_length=254, required=required)
        if value:
            try:
                validate_email(value)
            except ValidationError:
                self.errors.add(self.name(key), f"“{value}” is not a valid e-mail address.")
                return ""
        return value.lower()

    def unknown_keys(self, allowed: Iterable[str], *, ignore: Iterable[str] = (), context: str = "") -> None:
        allowed_set, ignored = set(allowed), set(ignore)
        for key, value in self.data.items():
            if key in allowed_set or key in ignored:
                continue
            if context and _blank(value):
                continue  # a generic client may send every key with null; only set values are wrong
            hint = f" {context}" if context else ""
            self.errors.add(self.name(str(key)), f"Unknown field{hint}; remove it or check its spelling.")


def email_list(value: Any, name: str, errors: FieldErrors) -> list[str]:
    """Billing e-mails: a JSON list, or one string separated by commas, semicolons or spaces."""
    if _blank(value):
        return []
    if isinstance(value, str):
        items = [v for v in re.split(r"[,;\s]+", value) if v]
    elif isinstance(value, list):
        items = value
    else:
        errors.add(name, "Enter a list of e-mail addresses.")
        return []
    cleaned: list[str] = []
    for index, item in enumerate(items):
        if not isinstance(item, str):
            errors.add(f"{name}.{index}" if isinstance(value, list) else name, "Enter an e-mail address.")
            continue
        try:
            validate_email(item.strip())
        except ValidationError:
            errors.add(name, f"“{item}” is not a valid e-mail address.")
            continue
        # Kept as written (the local part of an address may be case-sensitive), listed once.
        if item.strip().lower() not in {c.lower() for c in cleaned}:
            cleaned.append(item.strip())
    if len(cleaned) > 20:
        errors.add(name, "List at most 20 billing e-mail addresses.")
    return cleaned


def address_read(value: Any, errors: FieldErrors, *, name: str = "address") -> dict[str, str]:
    """The nested address of a customer or issuing entity as model field values."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        errors.add(name, "Enter the address as an object with line1, line2, city, region, postal_code and country.")
        return {}
    reader = Reader(value, errors, prefix=f"{name}.")
    reader.unknown_keys(ADDRESS_KEYS)
    out = {
        "address_line1": reader.text("line1", max_length=200),
        "address_line2": reader.text("line2", max_length=200),
        "city": reader.text("city", max_length=100),
        "region": reader.text("region", max_length=100),
        "postal_code": reader.text("postal_code", max_length=20),
    }
    country = reader.text("country", max_length=100)
    if country and not COUNTRY_RE.match(country.upper()):
        errors.add(f"{name}.country", f"“{country}” is not a country code; use two letters (ISO 3166-1), e.g. GB.")
    out["country"] = country.upper() if COUNTRY_RE.match(country.upper()) else ""
    return {k: v for k, v in out.items() if reader.has(_wire_address_key(k))}


def _wire_address_key(model_field: str) -> str:
    return {v: k for k, v in ADDRESS_MODEL_FIELDS.items()}[model_field]


def address_to_wire(obj) -> dict[str, str]:
    """Only the parts that are filled in, so a posted address reads back exactly."""
    return {key: getattr(obj, attr) for key, attr in ADDRESS_MODEL_FIELDS.items() if getattr(obj, attr)}


# ----------------------------------------------------------------------------- price lines


@dataclass
class CleanLine:
    """A validated price line, not yet saved: the model row, its tiers and its rate card."""

    line: PriceLine
    tiers: list[PriceTier] = field(default_factory=list)
    rates: list[RateCardEntry] = field(default_factory=list)
    requested_ref: str = ""


def _tier_flavour(charge_model: str) -> str:
    return "rate" if charge_model == ChargeModel.GRADUATED_PERCENTAGE else "unit"


def line_allowed_fields(kind: str, charge_model: str = "") -> tuple[str, ...]:
    fields = LINE_FIELDS.get(kind, ()) + LINE_OPTIONAL_FIELDS.get(kind, ())
    if kind == PriceLineKind.USAGE:
        fields += USAGE_MODEL_FIELDS.get(charge_model, ())
    return fields


def price_line_read(data: Any, index: int, errors: FieldErrors) -> CleanLine:
    """Validate one price line of the wire form; problems are named ``price_lines.<index>.<field>``."""
    prefix = f"price_lines.{index}."
    if not isinstance(data, Mapping):
        errors.add(f"price_lines.{index}", "Each price line must be an object with a kind and a description.")
        return CleanLine(line=PriceLine(kind="", description=""))
    r = Reader(data, errors, prefix=prefix)
    kind = r.choice("kind", PriceLineKind.values, required=True, what="price line kind")
    description = r.text("description", max_length=200, required=True)
    requested_ref = r.text(
        "line_ref",
        max_length=40,
        pattern=LINE_REF_RE,
        pattern_message="A line_ref is up to 40 letters, digits, dots, dashes or underscores, e.g. L3.",
    )
    if not kind:
        return CleanLine(line=PriceLine(kind="", description=description))
    charge_model = ""
    if kind == PriceLineKind.USAGE:
        charge_model = r.choice("charge_model", ChargeModel.values, required=True, what="charge model")
    allowed = ("kind", "description", "line_ref", "tax_category", *line_allowed_fields(kind, charge_model))
    kind_label = PriceLineKind(kind).label.lower()
    r.unknown_keys(
        allowed,
        context=f"for a {charge_model.replace('_', ' ')} usage line" if charge_model else f"for a {kind_label} line",
    )

    line = PriceLine(kind=kind, description=description, charge_model=charge_model)
    line.tax_category = r.choice("tax_category", TaxCategory.values, default=TaxCategory.STANDARD, what="tax category")
    clean = CleanLine(line=line, requested_ref=requested_ref)
    if kind == PriceLineKind.FIXED_FEE:
        line.amount = r.money("amount", required=True)
        line.bill_on = r.date("bill_on")
        line.included_hours = r.decimal("included_hours", label="budget in hours")
    elif kind == PriceLineKind.RECURRING:
        line.amount = r.money("amount", required=True)
        line.frequency = r.choice("frequency", Frequency.values, required=True, what="frequency")
        line.timing = r.choice("timing", Timing.values, required=True, what="timing")
        line.included_hours = r.decimal("included_hours", label="number of hours")
        line.overage_rate = r.money("overage_rate", label="overage rate")
        if line.included_hours is not None and line.overage_rate is None and not errors.has(prefix + "overage_rate"):
            errors.add(prefix + "overage_rate", "Give the hourly rate for hours beyond the included ones.")
        if line.overage_rate is not None and line.included_hours is None and not errors.has(prefix + "included_hours"):
            errors.add(prefix + "included_hours", "Give the hours included in the fee (0 if every hour is overage).")
    elif kind == PriceLineKind.MILESTONE:
        line.amount = r.money("amount")
        line.percent_of_fixed_fee = r.percent("percent_of_fixed_fee", positive=True)
        line.reference = r.text("reference", max_length=100)
        line.expected_date = r.date("expected_date")
        has_amount, has_percent = r.present("amount"), r.present("percent_of_fixed_fee")
        if not has_amount and not has_percent:
            errors.add(prefix + "amount", "A milestone needs an amount (or a percent_of_fixed_fee).")
        elif has_amount and has_percent:
            errors.add(prefix + "percent_of_fixed_fee", "Give either an amount or a percent_of_fixed_fee, not both.")
    elif kind == PriceLineKind.TIME_AND_MATERIALS:
        line.cap = r.money("cap", label="cap", positive=True)
        clean.rates = _rates_read(r.raw("rates"), prefix + "rates", errors)
    elif kind == PriceLineKind.USAGE:
        line.metric = r.text(
            "metric",
            max_length=100,
            required=True,
            pattern=METRIC_RE,
            pattern_message="A metric code is lowercase letters, digits, dots, dashes or underscores, e.g. api_calls.",
        )
        line.frequency = r.choice("frequency", Frequency.values, required=True, what="frequency")
        line.free_units = r.decimal("free_units", default=Decimal("0"), label="free units")
        line.minimum_commitment = r.money("minimum_commitment", default=Decimal("0"), label="minimum commitment")
        line.aggregation = r.choice("aggregation", Aggregation.values, default=Aggregation.SUM, what="aggregation")
        line.aggregation_property = r.text("aggregation_property", max_length=100)
        line.threshold_amount = r.money("threshold_amount", positive=True, label="threshold")
        if line.aggregation == Aggregation.UNIQUE_COUNT and not line.aggregation_property:
            errors.add(prefix + "aggregation_property", "Name the event property whose distinct values are counted.")
        if charge_model == ChargeModel.PER_UNIT:
            line.unit_amount = r.money("unit_amount", required=True, label="unit amount")
        elif charge_model in (ChargeModel.GRADUATED, ChargeModel.VOLUME, ChargeModel.GRADUATED_PERCENTAGE):
            clean.tiers = _tiers_read(r.raw("tiers"), prefix + "tiers", charge_model, errors)
        elif charge_model == ChargeModel.PACKAGE:
            line.package_size = r.decimal("package_size", required=True, positive=True, label="package size")
            line.amount = r.money("amount", required=True)
        elif charge_model == ChargeModel.PERCENTAGE:
            line.rate = r.percent("rate", required=True, label="rate")
            line.fixed_amount = r.money("fixed_amount", default=Decimal("0"), label="fixed amount")
            line.per_transaction_min = r.money("per_transaction_min", label="minimum per transaction")
            line.per_transaction_max = r.money("per_transaction_max", label="maximum per transaction")
            line.free_amount = r.money("free_amount", label="free amount")
            low, high = line.per_transaction_min, line.per_transaction_max
            if low is not None and high is not None and low > high:
                errors.add(prefix + "per_transaction_max", "The maximum per transaction must not be below the minimum.")
    return clean


def _rates_read(value: Any, name: str, errors: FieldErrors) -> list[RateCardEntry]:
    if _blank(value) or value == []:
        errors.add(name, "A time and materials line needs a rate card: at least one role with an hourly_rate.")
        return []
    if not isinstance(value, list):
        errors.add(name, "Enter the rate card as a list of {role, hourly_rate}.")
        return []
    rates: list[RateCardEntry] = []
    seen: set[str] = set()
    for index, item in enumerate(value):
        if not isinstance(item, Mapping):
            errors.add(f"{name}.{index}", "Each rate is an object with a role and an hourly_rate.")
            continue
        r = Reader(item, errors, prefix=f"{name}.{index}.")
        r.unknown_keys(("role", "hourly_rate"))
        role = r.text("role", max_length=100, required=True)
        rate = r.money("hourly_rate", required=True, label="hourly rate")
        if role and role.lower() in seen:
            errors.add(f"{name}.{index}.role", f"The role “{role}” is listed twice; give each role one rate.")
        seen.add(role.lower())
        rates.append(RateCardEntry(role=role, hourly_rate=rate))
    return rates


def _tiers_read(value: Any, name: str, charge_model: str, errors: FieldErrors) -> list[PriceTier]:
    if _blank(value) or value == []:
        errors.add(name, "Tiered pricing needs tiers; end with one that has no upper bound (up_to null).")
        return []
    if not isinstance(value, list):
        errors.add(name, "Enter the tiers as a list of {up_to, unit_amount, flat_amount}.")
        return []
    flavour = _tier_flavour(charge_model)
    tiers: list[PriceTier] = []
    parsed_ok = True
    for index, item in enumerate(value):
        if not isinstance(item, Mapping):
            errors.add(f"{name}.{index}", "Each tier is an object with up_to, a price and flat_amount.")
            parsed_ok = False
            continue
        r = Reader(item, errors, prefix=f"{name}.{index}.")
        r.unknown_keys(TIER_FIELDS[flavour], context=f"for a {charge_model.replace('_', ' ')} tier")
        before = len(errors.errors)
        tier = PriceTier(position=index + 1, up_to=r.decimal("up_to", positive=True, label="up_to"))
        if flavour == "rate":
            tier.rate = r.percent("rate", required=True, label="rate")
            tier.unit_amount = Decimal("0")
        else:
            tier.unit_amount = r.money("unit_amount", required=True, label="unit amount")
            tier.rate = Decimal("0")
        tier.flat_amount = r.money("flat_amount", default=Decimal("0"), label="flat amount")
        parsed_ok = parsed_ok and len(errors.errors) == before
        tiers.append(tier)
    if parsed_ok:
        problems = validate_tiers(
            [Tier(up_to=t.up_to, unit_amount=t.unit_amount, flat_amount=t.flat_amount, rate=t.rate) for t in tiers]
        )
        for problem in problems:
            errors.add(name, problem)
    return tiers


def price_lines_read(value: Any, errors: FieldErrors) -> list[CleanLine]:
    if value is None:
        return []
    if not isinstance(value, list):
        errors.add("price_lines", "Enter the price lines as a list.")
        return []
    if len(value) > 200:
        errors.add("price_lines", "A contract version holds at most 200 price lines.")
        return []
    # Always one CleanLine per posted line, so positions keep naming the right line in errors.
    return [price_line_read(item, index, errors) for index, item in enumerate(value)]


def price_lines_check_together(
    lines: list[CleanLine], errors: FieldErrors, *, start: date | None, end: date | None
) -> None:
    """Rules across the lines of one version: unique milestone references, percentages, dates."""
    references: dict[str, int] = {}
    percent_total = Decimal(0)
    has_fixed_fee = any(c.line.kind == PriceLineKind.FIXED_FEE for c in lines)
    for index, clean in enumerate(lines):
        line = clean.line
        prefix = f"price_lines.{index}."
        if line.kind == PriceLineKind.MILESTONE and line.reference:
            if line.reference in references:
                errors.add(
                    prefix + "reference",
                    f"Milestone reference {line.reference} is already used by line {references[line.reference] + 1}.",
                )
            references.setdefault(line.reference, index)
        if line.kind == PriceLineKind.MILESTONE and line.percent_of_fixed_fee is not None:
            percent_total += line.percent_of_fixed_fee
            if not has_fixed_fee:
                errors.add(
                    prefix + "percent_of_fixed_fee", "A percentage milestone needs a fixed fee line in the same terms."
                )
        for attr in ("bill_on", "expected_date"):
            when = getattr(line, attr, None)
            if when is None or start is None:
                continue
            if when < start or (end is not None and when > end):
                span = f"{start.isoformat()} – {end.isoformat()}" if end else f"from {start.isoformat()}"
                errors.add(prefix + attr, f"{when.isoformat()} is outside the contract ({span}).")
    if percent_total > 100:
        errors.add("price_lines", f"Milestone percentages add up to {percent_total} %, more than 100 %.")


# ----------------------------------------------------------------------------- terms and contracts


@dataclass
class CleanTerms:
    currency: str = ""
    payment_terms_days: int | None = None
    po_number: str = ""
    po_required: bool | None = None
    billing_anchor: str = ""
    price_lines: list[CleanLine] | None = None  # None: not given (an amendment keeps the lines)
    given: set[str] = field(default_factory=set)


def terms_read(data: Mapping[str, Any], errors: FieldErrors, *, defaults: bool) -> CleanTerms:
    """The terms part of a contract or an amendment. ``defaults`` fills what a new contract leaves out."""
    r = Reader(data, errors)
    terms = CleanTerms(given={k for k in (*TERMS_FIELDS, "price_lines") if k in data})
    terms.currency = r.currency("currency")
    terms.payment_terms_days = r.integer("payment_terms_days", default=30 if defaults else None, maximum=365)
    terms.po_number = r.text("po_number", max_length=100)
    terms.po_required = r.boolean("po_required", default=False if defaults else None)
    terms.billing_anchor = r.choice(
        "billing_anchor",
        BillingAnchor.values,
        default=BillingAnchor.CALENDAR if defaults else "",
        what="billing anchor",
    )
    if "price_lines" in data:
        terms.price_lines = price_lines_read(data.get("price_lines"), errors)
    elif defaults:
        terms.price_lines = []
    return terms


@dataclass
class CleanContract:
    values: dict[str, Any]
    terms: CleanTerms
    customer_ref: str = ""
    issuing_entity_ref: str = ""
    owner_email: str = ""
    given: set[str] = field(default_factory=set)


def contract_read(data: Any, errors: FieldErrors, *, partial: bool = False) -> CleanContract:
    """A contract as posted (DESIGN.md §5). ``partial`` reads only the keys present (updates)."""
    if not isinstance(data, Mapping):
        errors.add("non_field_errors", "Send the contract as a JSON object.")
        return CleanContract(values={}, terms=CleanTerms())
    r = Reader(data, errors)
    r.unknown_keys(CONTRACT_FIELDS + TERMS_FIELDS + ("price_lines",), ignore=CONTRACT_READ_ONLY)
    required = not partial
    values: dict[str, Any] = {}

    def want(key: str) -> bool:
        return not partial or key in data

    if want("number"):
        values["number"] = r.text("number", max_length=50, required=True)
    if want("title"):
        values["title"] = r.text("title", max_length=200, required=True)
    if want("status"):
        values["status"] = r.choice("status", ContractStatus.values, default=ContractStatus.ACTIVE, what="status")
    if want("start_date"):
        values["start_date"] = r.date("start_date", required=True)
    if want("end_date"):
        values["end_date"] = r.date("end_date")
    if want("auto_renew"):
        values["auto_renew"] = r.boolean("auto_renew", default=False)
    if want("renewal_term_months"):
        values["renewal_term_months"] = r.integer("renewal_term_months", default=12, minimum=1, maximum=120)
    if want("notice_period_days"):
        values["notice_period_days"] = r.integer("notice_period_days", default=30, maximum=730)
    if want("renewal_uplift_pct"):
        values["renewal_uplift_pct"] = r.percent("renewal_uplift_pct", default=Decimal("0"), label="renewal uplift")
    if want("renewal_window_days"):
        values["renewal_window_days"] = r.integer("renewal_window_days", minimum=1, maximum=730)
    if want("renewal_lead_days"):
        values["renewal_lead_days"] = r.integer("renewal_lead_days", default=30, minimum=0, maximum=365)
    if want("auto_issue"):
        values["auto_issue"] = r.boolean("auto_issue", default=None)
    if want("billed_through"):
        values["billed_through"] = r.date("billed_through")
    customer_ref = _ref(r, "customer", required=required)
    issuing_ref = _ref(r, "issuing_entity", required=False)
    owner = r.email("owner") if "owner" in data else ""
    terms = terms_read(data, errors, defaults=not partial)
    return CleanContract(
        values=values,
        terms=terms,
        customer_ref=customer_ref,
        issuing_entity_ref=issuing_ref,
        owner_email=owner,
        given=set(data.keys()),
    )


def _ref(r: Reader, key: str, *, required: bool) -> str:
    value = r.raw(key)
    if _blank(value):
        if required:
            r.errors.add(key, "This field is required.")
        return ""
    try:
        return ref_or_error(value)
    except ValueError as exc:
        r.errors.add(key, str(exc))
        return ""


def contract_dates_check(values: Mapping[str, Any], errors: FieldErrors) -> None:
    start, end = values.get("start_date"), values.get("end_date")
    if start and end and end < start:
        errors.add("end_date", f"The end date {end.isoformat()} is before the start date {start.isoformat()}.")
    if values.get("auto_renew") and not end:
        errors.add("end_date", "An auto-renewing contract needs an end date to renew from.")
    through = values.get("billed_through")
    if through and start and through < start:
        errors.add(
            "billed_through",
            f"{through.isoformat()} is before the contract starts ({start.isoformat()}); leave it empty when the "
            "old system billed nothing.",
        )
    elif through and end and through > end:
        errors.add("billed_through", f"{through.isoformat()} is after the contract ends ({end.isoformat()}).")


# ----------------------------------------------------------------------------- writing the wire form


def decimal_out(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def _date_out(value: date | None) -> str | None:
    return value.isoformat() if value else None


def tier_to_wire(tier, charge_model: str) -> dict[str, Any]:
    if _tier_flavour(charge_model) == "rate":
        return {
            "up_to": decimal_out(tier.up_to),
            "rate": decimal_out(tier.rate),
            "flat_amount": decimal_out(tier.flat_amount),
        }
    return {
        "up_to": decimal_out(tier.up_to),
        "unit_amount": decimal_out(tier.unit_amount),
        "flat_amount": decimal_out(tier.flat_amount),
    }


def price_line_to_wire(line, *, tiers=None, rates=None, with_ref: bool = False) -> dict[str, Any]:
    """One price line in exactly the keys of its kind (DESIGN.md §5). ``tiers``/``rates`` default to the line's own."""
    kind = line.kind
    out: dict[str, Any] = {}
    if with_ref:
        out["line_ref"] = line.line_ref
    out.update({"kind": kind, "description": line.description})
    keys = list(LINE_FIELDS.get(kind, ()))
    if kind == PriceLineKind.USAGE:
        keys += USAGE_MODEL_FIELDS.get(line.charge_model, ())
    for key in keys:
        out[key] = _line_value(line, key, tiers, rates)
    for key in LINE_OPTIONAL_FIELDS.get(kind, ()):
        value = _line_value(line, key, tiers, rates)
        if key == "aggregation" and value == Aggregation.SUM:
            continue
        if value not in (None, ""):
            out[key] = value
    if line.tax_category and line.tax_category != TaxCategory.STANDARD:
        out["tax_category"] = line.tax_category
    return out


def _line_value(line, key: str, tiers, rates) -> Any:
    if key == "tiers":
        tiers = list(line.tiers.all()) if tiers is None else tiers
        return [tier_to_wire(t, line.charge_model) for t in sorted(tiers, key=lambda t: t.position)]
    if key == "rates":
        rates = list(line.rates.all()) if rates is None else rates
        return [{"role": r.role, "hourly_rate": decimal_out(r.hourly_rate)} for r in rates]
    value = getattr(line, key)
    if isinstance(value, Decimal):
        return decimal_out(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def terms_to_wire(version, *, lines=None, with_refs: bool = False) -> dict[str, Any]:
    """The terms of a version; ``lines`` is a list of CleanLine for terms not yet saved."""
    if lines is None:
        wire_lines = [price_line_to_wire(pl, with_ref=with_refs) for pl in version.price_lines.all()]
    else:
        wire_lines = [price_line_to_wire(c.line, tiers=c.tiers, rates=c.rates, with_ref=with_refs) for c in lines]
    return {
        "currency": version.currency,
        "payment_terms_days": version.payment_terms_days,
        "po_number": version.po_number,
        "po_required": version.po_required,
        "billing_anchor": version.billing_anchor,
        "price_lines": wire_lines,
    }


def contract_to_wire(contract, version) -> dict[str, Any]:
    """A contract with the terms of ``version`` in the shape it is posted in, plus its id and status."""
    terms = (
        terms_to_wire(version)
        if version is not None
        else {
            "currency": None,
            "payment_terms_days": None,
            "po_number": "",
            "po_required": False,
            "billing_anchor": None,
            "price_lines": [],
        }
    )
    return {
        "id": str(contract.pk),
        "customer": contract.customer.external_id,
        "number": contract.number,
        "title": contract.title,
        "status": contract.status,
        "issuing_entity": str(
            version.issuing_entity_id_for(contract) if version is not None else contract.issuing_entity_id
        ),
        "owner": contract.owner.email if contract.owner_id else None,
        "start_date": _date_out(contract.start_date),
        "end_date": _date_out(contract.end_date),
        "currency": terms["currency"],
        "payment_terms_days": terms["payment_terms_days"],
        "po_number": terms["po_number"],
        "po_required": terms["po_required"],
        "billing_anchor": terms["billing_anchor"],
        "auto_renew": contract.auto_renew,
        "renewal_term_months": contract.renewal_term_months,
        "notice_period_days": contract.notice_period_days,
        "renewal_uplift_pct": decimal_out(contract.renewal_uplift_pct),
        "renewal_window_days": contract.renewal_window_days,
        "renewal_lead_days": contract.renewal_lead_days,
        "auto_issue": contract.auto_issue,
        "billed_through": _date_out(contract.billed_through),
        "current_version": version_summary_to_wire(version) if version is not None else None,
        "price_lines": terms["price_lines"],
    }


def version_summary_to_wire(version) -> dict[str, Any]:
    return {
        "version": version.version,
        "effective_from": version.effective_from.isoformat(),
        "reason": version.reason,
        "line_refs": [pl.line_ref for pl in version.price_lines.all()],
    }


def version_to_wire(version) -> dict[str, Any]:
    """A version as returned by the amendments endpoint: its number, dates, terms and lines."""
    return {
        "contract": version.contract.number,
        **version_summary_to_wire(version),
        **terms_to_wire(version),
        "issuing_entity": str(version.issuing_entity_id_for()),
    }


def customer_to_wire(customer) -> dict[str, Any]:
    return {
        "id": str(customer.pk),
        "external_id": customer.external_id,
        "legal_name": customer.legal_name,
        "currency": customer.currency,
        "billing_emails": list(customer.billing_emails),
        "tax_id": customer.tax_id,
        "tax_exempt": customer.tax_exempt,
        "tax_exempt_reason": customer.tax_exempt_reason,
        "tax_exempt_certificate": customer.tax_exempt_certificate,
        "address": address_to_wire(customer),
        "crm_id": customer.crm_id,
        "accounting_id": customer.accounting_id,
        "stripe_customer_id": customer.stripe_customer_id,
        "owner": customer.owner.email if customer.owner_id else None,
        "is_active": customer.is_active,
    }
