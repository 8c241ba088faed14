"""CSV that is safe to open in a spreadsheet: every CSV RevExOS writes goes through here.

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is read by Excel,
LibreOffice and Google Sheets as a formula ("CSV injection": ``=HYPERLINK(...)`` in a customer
name runs when finance opens the export). Such cells are written with a leading apostrophe, which
spreadsheets show as text and never evaluate (OWASP's recommendation). Plain numbers such as
``-120.00`` are left alone, so amounts in accounting exports stay numbers.

Our own CSV imports read a cell written this way back to its original value (``csv_unescape``),
so an export re-imports unchanged.

    writer = SafeDictWriter(out, fieldnames=COLUMNS)       # or safe_writer(out) for lists
    writer.writeheader()
    writer.writerow({"legal_name": "=cmd()"})              # written as '=cmd()
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Mapping
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?", re.ASCII)


def csv_cell(value: Any) -> Any:
    """The value as it may be written to a CSV cell: formulas neutralised, everything else as is."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def csv_unescape(value: str) -> str:
    """A cell read back from a CSV that ``csv_cell`` wrote: the apostrophe it added removed."""
    if value.startswith("'") and value[1:2] and value[1:].startswith(FORMULA_STARTS):
        return value[1:]
    return value


def csv_row(values: Iterable[Any]) -> list[Any]:
    return [csv_cell(v) for v in values]


class SafeDictWriter(csv.DictWriter):
    """``csv.DictWriter`` whose every cell goes through ``csv_cell``."""

    def writerow(self, rowdict: Mapping[str, Any]):
        return super().writerow({k: csv_cell(v) for k, v in rowdict.items()})

    def writerows(self, rowdicts):
        for row in rowdicts:
            self.writerow(row)


class _SafeWriter:
    def __init__(self, writer):
        self._writer = writer

    def writerow(self, row: Iterable[Any]):
        return self._writer.writerow(csv_row(row))

    def writerows(self, rows):
        for row in rows:
            self.writerow(row)

    def __getattr__(self, name):
        return getattr(self._writer, name)


def safe_writer(fileobj, *args, **kwargs) -> _SafeWriter:
    """``csv.writer`` whose every cell goes through ``csv_cell``."""
    return _SafeWriter(csv.writer(fileobj, *args, **kwargs))
