"""Property test of the CSV reader: for CSV text with quotes, separators, line breaks and Unicode
spaces inside fields, the raw lines read are what Python's `csv` module (a standard RFC 4180 reader)
reads from the same bytes, whatever ends each line (CRLF, LF, CR, mixed in one file): quoted line
breaks arrive as they were written; an empty field arrives as null. The record count of the row-count
check agrees."""

from __future__ import annotations

import csv
import tempfile
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from sales_assets.contract import RAW_COLUMNS
from sales_assets.transforms.ingest import count_source_records, read_raw_file

AWKWARD = list("ab ,\"\\;\n\r\t'") + ["\u00a0", "\u2003", "\u3000", "\u2028", "\u0085", "é", "🚀", "\ufeff"]
fields = st.text(
    alphabet=st.one_of(
        st.sampled_from(AWKWARD), st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
    ),
    max_size=10,
)
records = st.lists(st.lists(fields, min_size=len(RAW_COLUMNS), max_size=len(RAW_COLUMNS)), min_size=1, max_size=6)


def rfc4180(field: str, quote_all: bool) -> str:
    """A field as RFC 4180 writes it: quoted when it holds a comma, a quote, CR or LF. (Python's
    csv.writer leaves a lone CR unquoted in an LF file, which no reader can read back.)"""
    if quote_all or any(c in field for c in ',"\r\n'):
        return '"' + field.replace('"', '""') + '"'
    return field


def csv_bytes(rows: list[list[str]], terminator: str | list[str], bom: bool, quote_all: bool) -> bytes:
    """The header and `rows` as RFC 4180 CSV; `terminator` ends every line, or a list gives each
    line's own ending in turn (files joined with `cat` mix them)."""
    lines = [",".join(rfc4180(f, quote_all) for f in row) for row in [list(RAW_COLUMNS), *rows]]
    ends = [terminator] * len(lines) if isinstance(terminator, str) else (terminator * len(lines))[: len(lines)]
    return (("\ufeff" if bom else "") + "".join(line + end for line, end in zip(lines, ends, strict=True))).encode(
        "utf-8"
    )


@given(
    rows=records,
    terminator=st.lists(st.sampled_from(["\r\n", "\n", "\r"]), min_size=1, max_size=7),
    bom=st.booleans(),
    quote_all=st.booleans(),
)
def test_the_reader_reads_what_pythons_csv_module_reads(spark, rows, terminator, bom, quote_all):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sales.csv"
        path.write_bytes(csv_bytes(rows, terminator, bom, quote_all))
        with open(path, newline="", encoding="utf-8-sig") as f:
            expected = [tuple(r) for r in list(csv.reader(f))[1:]]
        got = [
            tuple("" if v is None else v for v in r) for r in read_raw_file(spark, str(path)).collect()
        ]  # a few rows
        assert sorted(got) == sorted(expected)  # a file with quoted line breaks is parsed in a task of its own
        assert count_source_records(spark, str(path)) == len(expected)
