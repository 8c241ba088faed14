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
