"""Filters of the leakage pages: evidence cells read from JSON rows."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def cell(row: dict, column: str):
    value = row.get(column, "")
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) if value else "—"
    if value is None or value == "":
        return "—"
    if value is True:
        return "yes"
    if value is False:
        return "no"
    return value


@register.filter
def label(column: str) -> str:
    return column.replace("_", " ")
