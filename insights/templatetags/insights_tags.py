"""The "?" beside every figure: its definition in a popover, one click from the full page."""

from __future__ import annotations

from django import template
from django.urls import reverse

from insights.definitions import DEFINITIONS

register = template.Library()


@register.inclusion_tag("insights/_definition.html")
def definition(anchor: str):
    title, short, _ = DEFINITIONS[anchor]
    return {"anchor": anchor, "title": title, "short": short, "url": reverse("insights:definitions") + f"#{anchor}"}


@register.filter
def get_item(mapping, key):
    return mapping.get(key) if mapping else None


@register.filter
def svg(value) -> str:
    """An SVG coordinate with one decimal (12.3): charts draw dozens per render, and ``floatformat``
    goes through Decimal and the locale for each (an SVG number is never localized)."""
    return f"{float(value):.1f}"
