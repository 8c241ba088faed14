"""URL path converters. ``<id:pk>`` is Django's ``<int:pk>`` bounded to what a database id can be:
ASCII digits, 1 … 2^63 − 1. Anything else does not match, so the URL answers 404 instead of a
query that fails on an out-of-range integer."""

from __future__ import annotations

from django.urls import register_converter
from django.urls.converters import get_converters

from revexos.parsing import parse_id


class IdConverter:
    regex = "[0-9]{1,19}"

    def to_python(self, value: str) -> int:
        number = parse_id(value)
        if number is None:
            raise ValueError(value)  # no match: the resolver tries the next pattern, then 404s
        return number

    def to_url(self, value) -> str:
        return str(int(value))


def converters_register() -> None:
    if "id" not in get_converters():
        register_converter(IdConverter, "id")
