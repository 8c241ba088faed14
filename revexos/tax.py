"""Tax: who owes what on an invoice (DESIGN.md §4). Pure: dataclasses in, Decimal out, no ORM.

``contracts/services/tax.py`` loads the rates, the parties and the lines and calls
:func:`invoice_tax`; the totals function of a draft (``invoice_adjustments_apply``) stores what it
returns. Credit notes split their amount with :func:`credit_tax_reversal`.

The determination, first match wins
    1. The customer is marked exempt (with a reason or certificate)      → ``exempt``: no tax.
    2. The issuing entity has no country                                  → ``not_collected``.
    3. Place of supply is the customer's country (and state for the US); a customer without a
       country is taken to be in the entity's country.
    4. Same tax area as the entity (the EU counts as one area):
         - EU, another member state, customer has a VAT id                → ``reverse_charge``
           (0, with the Article 196 mention);
         - EU, another member state, no VAT id (not a business)           → ``domestic`` at the
           entity's own rates (the general rule for services to consumers);
         - otherwise                                                      → ``domestic`` at the rates
           of the customer's country (and region) in force on the issue date.
    5. Another tax area, both sides in a VAT system, customer has a tax id → ``reverse_charge``
       (the customer accounts for the VAT where it is).
    6. Another tax area                                                   → ``outside_scope``: no tax.

"Domestic" needs a rate for each category on the invoice: the latest ``valid_from`` on or before
the issue date, a rate for the customer's region winning over the country-wide one. A country for
which the tenant keeps no rate at all is one it does not collect tax in (``not_collected``: a US
entity has no sales tax until a state rate is added); a country that has rates but none for a
category on that date is a problem (``missing_rate``), and the pre-send check holds the draft.
The ``exempt`` category needs no rate: it is 0 by definition.

The math
    Tax is computed per rate on the discounted, rounded subtotal: the lines' net amounts (after
    discounts, already rounded) are summed per rate, and each sum is multiplied by its percent and
    rounded once, half-up, to the currency (``revexos.money.quantize``). Never per line: ten lines of
    0.05 at 20 % owe 0.10, not ten roundings of 0.01.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from revexos.money import allocate, quantize, to_decimal

__all__ = [
    "CATEGORIES",
    "EU_COUNTRIES",
    "Determination",
    "Party",
    "Rate",
    "TaxLine",
    "TaxResult",
    "TaxableLine",
    "credit_tax_reversal",
    "determine",
    "invoice_tax",
    "rate_in_force",
    "tax_area",
]

ZERO = Decimal("0")
HUNDRED = Decimal("100")

STANDARD, REDUCED, SUPER_REDUCED, ZERO_RATED, EXEMPT = "standard", "reduced", "super_reduced", "zero", "exempt"
CATEGORIES: dict[str, str] = {
    STANDARD: "Standard",
    REDUCED: "Reduced",
    SUPER_REDUCED: "Second reduced",
    ZERO_RATED: "Zero-rated",
    EXEMPT: "Exempt",
}

# Treatments of a whole invoice.
DOMESTIC = "domestic"
REVERSE_CHARGE = "reverse_charge"
OUTSIDE_SCOPE = "outside_scope"
EXEMPT_CUSTOMER = "exempt"
NOT_COLLECTED = "not_collected"
MISSING_RATE = "missing_rate"

EU_COUNTRIES = frozenset(
    [
        "AT",
        "BE",
        "BG",
        "CY",
        "CZ",
        "DE",
        "DK",
        "EE",
        "ES",
        "FI",
        "FR",
        "GR",
        "HR",
        "HU",
        "IE",
        "IT",
        "LT",
        "LU",
        "LV",
        "MT",
        "NL",
        "PL",
        "PT",
        "RO",
        "SE",
        "SI",
        "SK",
    ]
)
# Countries with a VAT/GST where a foreign business customer self-accounts (reverse charge).
VAT_COUNTRIES = EU_COUNTRIES | {"GB", "CH", "LI", "NO", "IS", "AU", "NZ"}
# Tax areas wider than one country.
_AREAS = {"IM": "GB", "LI": "CH", "MC": "FR"}
# Countries whose tax is set per state or province: no rate for the customer's state = not collected.
SUBNATIONAL = frozenset({"US"})

COUNTRY_NAMES = {
    "AT": "Austria", "AU": "Australia", "BE": "Belgium", "BG": "Bulgaria", "CA": "Canada", "CH": "Switzerland",
    "CY": "Cyprus", "CZ": "Czechia", "DE": "Germany", "DK": "Denmark", "EE": "Estonia", "ES": "Spain",
    "FI": "Finland", "FR": "France", "GB": "the United Kingdom", "GR": "Greece", "HR": "Croatia", "HU": "Hungary",
    "IE": "Ireland", "IS": "Iceland", "IT": "Italy", "LI": "Liechtenstein", "LT": "Lithuania", "LU": "Luxembourg",
    "LV": "Latvia", "MT": "Malta", "NL": "the Netherlands", "NO": "Norway", "NZ": "New Zealand", "PL": "Poland",
    "PT": "Portugal", "RO": "Romania", "SE": "Sweden", "SI": "Slovenia", "SK": "Slovakia", "US": "the United States",
}  # fmt: skip
_TAX_NAMES = {
    "GB": "UK VAT",
    "US": "US sales tax",
    "AU": "Australian GST",
    "NZ": "New Zealand GST",
    "CA": "Canadian GST",
}

REVERSE_CHARGE_EU_MENTION = (
    "Reverse charge: VAT to be accounted for by the customer (Article 196, Council Directive 2006/112/EC)."
)


def country_name(code: str) -> str:
    return COUNTRY_NAMES.get(code, code)


def tax_name(country: str) -> str:
    """What the tax is called where ``country`` collects it, for mentions ("UK VAT", "German VAT")."""
    if country in _TAX_NAMES:
        return _TAX_NAMES[country]
    return f"VAT ({country})" if country in VAT_COUNTRIES else f"tax ({country})"


def tax_area(country: str) -> str:
    """The area inside which a supply is domestic: the EU is one, the Isle of Man goes with GB."""
    country = (country or "").upper()
    if country in EU_COUNTRIES:
        return "EU"
    return _AREAS.get(country, country)


@dataclass(frozen=True, slots=True)
class Rate:
    """One configured rate; ``percent`` is 20 for 20 %. ``region`` blank = the whole country."""

    id: Hashable
    name: str
    country: str
    category: str
    percent: Decimal
    valid_from: date
    region: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "percent", to_decimal(self.percent, "percent"))


@dataclass(frozen=True, slots=True)
class Party:
    """The issuing entity or the customer as tax sees them. ``tax_id`` only counts when valid."""

    country: str
    region: str = ""
    tax_id: str = ""
    exempt: bool = False
    exempt_note: str = ""


@dataclass(frozen=True, slots=True)
class TaxableLine:
    key: Hashable
    category: str
    net: Decimal  # the line's amount after discounts, rounded to the currency


@dataclass(frozen=True, slots=True)
class Determination:
    treatment: str
    country: str = ""  # where the tax is due (domestic), else the entity's
    region: str = ""
    mention: str = ""  # printed on the invoice


@dataclass(frozen=True, slots=True)
class TaxLine:
    """One row of the tax summary: the lines taxed at one rate."""

    name: str
    percent: Decimal
    taxable: Decimal
    amount: Decimal
    category: str = ""
    country: str = ""
    rate_id: Hashable | None = None
    reverse_charge: bool = False
    line_keys: tuple = ()


@dataclass(frozen=True, slots=True)
class TaxResult:
    treatment: str
    tax_total: Decimal
    lines: tuple[TaxLine, ...] = ()
    mention: str = ""
    problems: tuple[str, ...] = ()  # missing rates, each naming country and category
    country: str = ""
    missing: tuple[tuple[str, str, str], ...] = field(default=())  # (country, region, category)


def determine(*, entity: Party, customer: Party) -> Determination:
    """Which treatment applies to a supply from ``entity`` to ``customer`` (rules in the module doc)."""
    seller = (entity.country or "").upper()
    if customer.exempt:
        note = customer.exempt_note.strip()
        return Determination(
            EXEMPT_CUSTOMER, seller, mention=f"Exempt from tax: {note}." if note else "Exempt from tax."
        )
    if not seller:
        return Determination(NOT_COLLECTED, mention="")
    buyer = (customer.country or seller).upper()
    region = (customer.region or "").strip().upper() if buyer == (customer.country or "").upper() else ""
    if tax_area(buyer) == tax_area(seller):
        if buyer != seller and tax_area(seller) == "EU":
            if customer.tax_id:
                return Determination(REVERSE_CHARGE, seller, mention=REVERSE_CHARGE_EU_MENTION)
            return Determination(DOMESTIC, seller, entity.region.upper() if entity.region else "")
        return Determination(DOMESTIC, buyer, region)
    if seller in VAT_COUNTRIES and buyer in VAT_COUNTRIES and customer.tax_id:
        return Determination(
            REVERSE_CHARGE,
            seller,
            mention=(
                f"Reverse charge: the customer accounts for the VAT in {country_name(buyer)}. "
                f"Outside the scope of {tax_name(seller)}."
            ),
        )
    return Determination(
        OUTSIDE_SCOPE,
        seller,
        mention=f"Outside the scope of {tax_name(seller)}: the place of supply is {country_name(buyer)}.",
    )


def rate_in_force(rates: Sequence[Rate], *, country: str, region: str, category: str, on: date) -> Rate | None:
    """The rate for ``category`` in ``country`` on ``on``: the region's own first, then the country-wide one;
    among those, the latest ``valid_from`` on or before ``on``."""
    for wanted_region in [region, ""] if region else [""]:
        candidates = [
            r
            for r in rates
            if r.country == country
            and r.region.upper() == wanted_region
            and r.category == category
            and r.valid_from <= on
        ]
        if candidates:
            return max(candidates, key=lambda r: (r.valid_from, str(r.id)))
    return None


def _collects(rates: Sequence[Rate], country: str, region: str) -> bool:
    """Whether the tenant collects tax where the supply takes place (see the module doc)."""
    if country in SUBNATIONAL:
        return any(r.country == country and r.region.upper() in ("", region) for r in rates)
    return any(r.country == country for r in rates)


def invoice_tax(
    *,
    entity: Party,
    customer: Party,
    lines: Sequence[TaxableLine],
    rates: Sequence[Rate],
    on: date,
    currency: str,
) -> TaxResult:
    """Determine the treatment and compute the tax of ``lines`` per rate, on the issue date ``on``."""
    d = determine(entity=entity, customer=customer)
    net_total = quantize(sum((quantize(line.net, currency) for line in lines), ZERO), currency)
    keys = tuple(line.key for line in lines)
    nothing = quantize(ZERO, currency)

    def zero_line(name: str, *, reverse_charge: bool = False) -> tuple[TaxLine, ...]:
        if not lines:
            return ()
        return (
            TaxLine(name, ZERO, net_total, nothing, reverse_charge=reverse_charge, line_keys=keys, country=d.country),
        )

    if d.treatment == REVERSE_CHARGE:
        return TaxResult(
            d.treatment, nothing, zero_line("Reverse charge", reverse_charge=True), d.mention, country=d.country
        )
    if d.treatment == OUTSIDE_SCOPE:
        return TaxResult(d.treatment, nothing, zero_line("Outside the scope"), d.mention, country=d.country)
    if d.treatment == EXEMPT_CUSTOMER:
        return TaxResult(d.treatment, nothing, zero_line("Exempt"), d.mention, country=d.country)
    if d.treatment == NOT_COLLECTED or not _collects(rates, d.country, d.region):
        where = f"{d.country}-{d.region}" if d.region else d.country
        note = f"No tax: no rate is set up for {where}." if where else "No tax: the issuing entity has no country."
        # Nothing was determined, so there is no summary to print: the note says why on the invoice page.
        return TaxResult(NOT_COLLECTED, nothing, (), note, country=d.country)

    groups: dict[tuple, list[TaxableLine]] = {}
    by_group: dict[tuple, tuple[str, Decimal, str, Hashable | None]] = {}
    missing: list[tuple[str, str, str]] = []
    for line in lines:
        if line.category == EXEMPT:
            group = ("exempt",)
            by_group[group] = ("Exempt", ZERO, EXEMPT, None)
        else:
            rate = rate_in_force(rates, country=d.country, region=d.region, category=line.category, on=on)
            if rate is None:
                if (d.country, d.region, line.category) not in missing:
                    missing.append((d.country, d.region, line.category))
                continue
            group = ("rate", rate.id)
            by_group[group] = (rate.name, rate.percent, rate.category, rate.id)
        groups.setdefault(group, []).append(line)
    if missing:
        problems = tuple(
            f"No {CATEGORIES.get(category, category).lower()} tax rate for {country}{'-' + region if region else ''} "
            f"is in force on {on.isoformat()}: add one under Settings → Tax rates (or change the price line's tax "
            "category), then check the draft again."
            for country, region, category in missing
        )
        return TaxResult(MISSING_RATE, nothing, (), "", problems, d.country, tuple(missing))

    tax_lines = []
    for group, members in groups.items():
        name, percent, category, rate_id = by_group[group]
        taxable = quantize(sum((quantize(m.net, currency) for m in members), ZERO), currency)
        amount = quantize(taxable * percent / HUNDRED, currency)
        tax_lines.append(
            TaxLine(
                name=name,
                percent=percent,
                taxable=taxable,
                amount=amount,
                category=category,
                country=d.country,
                rate_id=rate_id,
                line_keys=tuple(m.key for m in members),
            )
        )
    tax_lines.sort(key=lambda t: (-t.percent, t.name))
    total = quantize(sum((t.amount for t in tax_lines), ZERO), currency)
    return TaxResult(DOMESTIC, total, tuple(tax_lines), d.mention, country=d.country)


def credit_tax_reversal(
    *,
    tax_lines: Sequence[dict],
    invoice_total: Decimal,
    credit_amount: Decimal,
    already: Sequence[dict] = (),
    final: bool = False,
    currency: str,
) -> list[dict]:
    """The share of each tax line a credit note reverses: ``credit_amount / invoice_total`` of the invoice's
    tax (rounded once, spread over the rates), the rest of the credit being its net (spread over the
    taxable bases), so net + tax equals the credit exactly. ``already`` holds what earlier credit notes reversed; the
    ``final`` one (which brings the credited total to the invoice total) takes exactly what is left,
    so an invoice credited in parts reverses its tax to the cent.

    Each dict has ``name``, ``rate``, ``taxable`` and ``amount`` (strings or Decimals), as stored on the invoice.
    """
    total = to_decimal(invoice_total, "invoice_total")
    credit = to_decimal(credit_amount, "credit_amount")
    done: dict[tuple, tuple[Decimal, Decimal]] = {}
    for row in already:
        key = (row["name"], str(to_decimal(row["rate"], "rate")))
        taxable, amount = done.get(key, (ZERO, ZERO))
        done[key] = (taxable + to_decimal(row["taxable"]), amount + to_decimal(row["amount"]))
    taxes = [to_decimal(t["amount"]) for t in tax_lines]
    bases = [to_decimal(t["taxable"]) for t in tax_lines]
    keys = [(t["name"], str(to_decimal(t["rate"], "rate"))) for t in tax_lines]
    if final:
        amounts = [taxes[i] - done.get(k, (ZERO, ZERO))[1] for i, k in enumerate(keys)]
        taxables = [bases[i] - done.get(k, (ZERO, ZERO))[0] for i, k in enumerate(keys)]
    elif not tax_lines:
        return []
    else:
        # The credit's tax, rounded once, spread over the rates by their tax; the rest of the credit
        # is its net, spread by taxable base. Both splits sum exactly, so net + tax = the credit.
        credit_tax = quantize(sum(taxes, ZERO) * credit / total, currency) if total > 0 else ZERO
        amounts = allocate(total=credit_tax, weights=taxes, currency=currency) if credit_tax else [ZERO] * len(taxes)
        taxables = allocate(total=credit - credit_tax, weights=bases, currency=currency)
    return [
        {**t, "taxable": str(quantize(taxables[i], currency)), "amount": str(quantize(amounts[i], currency))}
        for i, t in enumerate(tax_lines)
    ]
