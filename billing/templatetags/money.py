"""Template filters that display money with the currency's own number of decimals."""

from __future__ import annotations

from decimal import Decimal

from django import template
from django.utils.safestring import mark_safe

from revexos.money import format_money, minor_units

register = template.Library()


@register.filter
def money(amount, currency: str) -> str:
    if amount in (None, ""):
        return ""
    return format_money(Decimal(amount), currency)


@register.filter
def signed_money(amount, currency: str) -> str:
    """Like ``money`` but a negative amount prints with a true minus sign (−310.00), as on paper."""
    if amount in (None, ""):
        return ""
    amount = Decimal(amount)
    return f"−{format_money(-amount, currency)}" if amount < 0 else format_money(amount, currency)


@register.filter
def unit_price(amount, currency: str) -> str:
    """Unit prices keep the precision they were agreed at (0.0015 per call), at least the currency's."""
    if amount in (None, ""):
        return ""
    value = Decimal(amount).normalize()
    digits = max(minor_units(currency), -value.as_tuple().exponent if value.as_tuple().exponent < 0 else 0)
    return f"{value:,.{digits}f}"


@register.filter
def quantity(value) -> str:
    if value in (None, ""):
        return ""
    value = Decimal(value).normalize()
    # int(): a normalized 2400000 is 2.4E+6, which "{:,}" would print as such.
    return f"{value:,f}" if value != value.to_integral() else f"{int(value):,}"


@register.filter
def css_string(value) -> str:
    """Text safe inside a double-quoted CSS string (``content: "…"`` in @page margin boxes).

    CSS escapes are ``\\<hex> ``, not JavaScript's ``\\uXXXX``: escapejs would print
    "INV\\u002D2026" literally in the page header.
    """
    text = str(value or "")
    out = []
    for char in text:
        if char in '"\\' or ord(char) < 0x20 or char in "<>":
            out.append(f"\\{ord(char):X} ")
        else:
            out.append(char)
    # Safe: quotes, backslashes and angle brackets are escaped above, and HTML entities would
    # print literally inside <style> ("Smith &amp; Co").
    return mark_safe("".join(out))


@register.filter
def problem_only(reason: str) -> str:
    """A pre-send reason without its advice: "Contract C-1047 requires a PO number and none is on
    its terms" (the reasons read "<what is wrong>: <how to fix it>"; the invoice page has both)."""
    text = str(reason or "")
    head, sep, _ = text.partition(": ")
    return (head if sep and len(head) >= 20 else text).rstrip(". ")
