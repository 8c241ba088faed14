from __future__ import annotations

from datetime import date

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
def days_until(day: date | None, today: date) -> int | None:
    if day is None or today is None:
        return None
    return (day - today).days


@register.filter
def negate(value: int) -> int:
    return -value


@register.filter
def person(user) -> str:
    """A user's name, or their e-mail with a break opportunity before the @ for narrow columns."""
    from django.utils.html import escape
    from django.utils.safestring import mark_safe

    if user is None:
        return ""
    if getattr(user, "full_name", ""):
        return escape(user.full_name)
    local, _, domain = user.email.partition("@")
    return mark_safe(f"{escape(local)}<wbr>@{escape(domain)}")
