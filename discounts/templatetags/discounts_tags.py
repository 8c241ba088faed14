from __future__ import annotations

from decimal import Decimal

from django import template

from revexos.money import format_money

register = template.Library()


@register.filter
def money(amount, currency: str) -> str:
    """1,700.00 in the currency's own digits; empty for a missing amount."""
    if amount is None or not currency:
        return ""
    return format_money(amount, currency)


@register.filter
def signed_money(amount, currency: str) -> str:
    """+310.00 / −12.50 / 0.00: an uplift or a reduction."""
    if amount is None or not currency:
        return ""
    if amount > 0:
        return f"+{format_money(amount, currency)}"
    if amount < 0:
        return f"−{format_money(-Decimal(amount), currency)}"
    return format_money(amount, currency)


@register.filter
def days_until(day, today):
    if day is None or today is None:
        return None
    return (day - today).days
