"""The one CSV writer: Python csv.writer's bytes, formula-safe text, for every CSV the product writes."""

from __future__ import annotations

import csv
import io
from datetime import datetime

import numpy as np
import pytest

from core.csvout import CsvWriter, csv_chunks, fixed_decimals, neutralise, text_columns, write_csv

TRICKY = [
    "plain",
    "",
    None,
    "with,comma",
    'with "quotes"',
    "two\nlines",
    "carriage\rreturn",
    "Zoé ✓ 東京",
    "=HYPERLINK(1)",
    "+1",
    "-5",
    "@sum",
    "\tstarts with a tab",
    "\rstarts with CR",
    '=A1,"b"',
    "a=b",
]


def _python_csv(header: list[str], rows: list[list]) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def test_text_columns_match_csv_writer_after_neutralising():
    buffer = io.BytesIO()
    rows = write_csv(buffer, ["a", "b"], [[TRICKY, list(reversed(TRICKY))]])
    expected = _python_csv(
        ["a", "b"], [[neutralise(x), neutralise(y)] for x, y in zip(TRICKY, reversed(TRICKY), strict=True)]
    )
    assert rows == len(TRICKY)
    assert buffer.getvalue() == expected


def test_number_columns_are_written_as_they_are():
    buffer = io.BytesIO()
    write_csv(buffer, ["n", "t"], [[["-3", "+4", "5"], ["-3", "+4", "5"]]], text=[False, True])
    assert buffer.getvalue().decode() == "n,t\r\n-3,'-3\r\n+4,'+4\r\n5,5\r\n"


def test_a_header_made_from_a_user_given_name_is_neutralised():
    buffer = io.BytesIO()
    CsvWriter(buffer, ["user_id", "=cmd|' /C calc'!A0 score", "-x, y"])
    assert buffer.getvalue().decode() == "user_id,'=cmd|' /C calc'!A0 score,\"'-x, y\"\r\n"


def test_text_streams_get_the_same_characters():
    binary, text = io.BytesIO(), io.StringIO()
    for out in (binary, text):
        write_csv(out, ["a"], [[TRICKY[:4]], [TRICKY[4:]]])
    assert text.getvalue() == binary.getvalue().decode("utf-8")


@pytest.mark.parametrize(
    "value",
    [0.0, 0.005, 0.01, 12.5, 74.99, 75.0, 99.995, 100.0, -0.5, -12.34, 1234567.891, float("nan")],
)
def test_fixed_decimals_print_like_python_format(value):
    expected = None if np.isnan(value) else f"{value:.2f}"
    assert fixed_decimals(np.array([value])).to_pylist() == [expected]


def test_database_rows_are_written_as_text_with_every_cell_neutralised():
    rows = [("=1+1", "Hi, you", 7, datetime(2030, 1, 3, 17, 0)), ("Spring", None, -8, None)]
    chunks = csv_chunks(["campaign", "title", "user_id", "sent_at"], [text_columns(rows)])
    assert b"".join(chunks).decode() == (
        "campaign,title,user_id,sent_at\r\n'=1+1,\"Hi, you\",7,2030-01-03 17:00:00\r\nSpring,,'-8,\r\n"
    )
