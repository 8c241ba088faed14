"""CSV exports never hand a spreadsheet a formula (revexos/csv_safe.py)."""

from __future__ import annotations

import csv
import io

import pytest

from revexos.csv_safe import SafeDictWriter, csv_cell, csv_unescape, safe_writer

DANGEROUS = ["=1+1", "+cmd", "-2+3", "@SUM(A1)", "\t=1", "\r=1", '=HYPERLINK("http://x","y")', "-", "+"]


@pytest.mark.parametrize("value", DANGEROUS)
def test_cells_that_start_a_formula_are_written_as_text(value):
    assert csv_cell(value) == "'" + value
    assert csv_unescape(csv_cell(value)) == value


@pytest.mark.parametrize("value", ["-120.00", "+5", "-3", "Acme Ltd", "", "'quoted", 12, None, "a=b"])
def test_numbers_and_plain_text_are_left_alone(value):
    assert csv_cell(value) == value


def test_the_writers_neutralise_every_cell():
    out = io.StringIO()
    writer = SafeDictWriter(out, fieldnames=["a", "b"], lineterminator="\n")
    writer.writeheader()
    writer.writerows([{"a": "=1", "b": "-5.00"}])
    safe_writer(out, lineterminator="\n").writerow(["@x", "ok"])
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert rows == [["a", "b"], ["'=1", "-5.00"], ["'@x", "ok"]]
