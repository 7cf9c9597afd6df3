"""Property test of the CSV reader: for CSV text with quotes, separators, line breaks and Unicode
spaces inside fields, the raw lines read are what Python's `csv` module (a standard RFC 4180 reader)
reads from the same bytes, whatever ends each line (CRLF, LF, CR, mixed in one file): quoted line
breaks arrive as they were written; an empty field arrives as null. The record count of the row-count
check agrees. A batch of 30 random files is written to one folder and read as one source: one
read for all of them, each file by its own header."""

from __future__ import annotations

import csv
import tempfile
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from sales_assets.contract import RAW_COLUMNS
from sales_assets.transforms.ingest import count_source_records, read_raw_file
from sales_assets_tests.helpers import csv_bytes

AWKWARD = list("ab ,\"\\;\n\r\t'") + ["\u00a0", "\u2003", "\u3000", "\u2028", "\u0085", "é", "🚀", "\ufeff"]
fields = st.text(
    alphabet=st.one_of(
        st.sampled_from(AWKWARD), st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
    ),
    max_size=10,
)
records = st.lists(st.lists(fields, min_size=len(RAW_COLUMNS), max_size=len(RAW_COLUMNS)), min_size=1, max_size=6)


BATCH = 30
files = st.fixed_dictionaries(
    {
        "rows": records,
        "terminator": st.lists(st.sampled_from(["\r\n", "\n", "\r"]), min_size=1, max_size=7),
        "bom": st.booleans(),
        "quote_all": st.booleans(),
    }
)


@given(st.lists(files, min_size=BATCH, max_size=BATCH))
def test_the_reader_reads_what_pythons_csv_module_reads(spark, batch):
    with tempfile.TemporaryDirectory() as tmp:
        expected = []
        for i, file in enumerate(batch):
            path = Path(tmp) / f"sales_{i:02}.csv"
            path.write_bytes(csv_bytes(**file))
            with open(path, newline="", encoding="utf-8-sig") as f:
                expected += [tuple(r) for r in list(csv.reader(f))[1:]]
        got = [tuple("" if v is None else v for v in r) for r in read_raw_file(spark, tmp).collect()]  # a few rows
        # files with quoted line breaks are parsed by Arrow, the others by Spark's line reader
        assert sorted(got) == sorted(expected)
        assert count_source_records(spark, tmp) == len(expected)
