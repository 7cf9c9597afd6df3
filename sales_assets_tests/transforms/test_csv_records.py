"""The record counter and the Arrow parser of CSV files (transforms/csv_records.py), against
Python's `csv` module, on bytes written with every line ending, mixed."""

from __future__ import annotations

import csv
import io
import random

import pytest

from sales_assets.transforms.csv_records import count_file_records, count_records, parse_records


def rfc4180(field: str) -> str:
    return '"' + field.replace('"', '""') + '"' if any(c in field for c in ',"\r\n') else field


def random_csv(rng: random.Random) -> tuple[bytes, list[list[str]]]:
    """A header and rows of three fields, each line ended by CRLF, LF or CR at random; the rows
    as Python's csv module reads them back."""
    pieces = ["a", "é", ",", '"', "\n", "\r\n", "\r", " ", "\t", "🚀"]
    rows = [[rng.choice(["x", ""]) + "".join(rng.choices(pieces, k=rng.randint(0, 4))) for _ in range(3)]]
    rows += [["".join(rng.choices(pieces, k=rng.randint(0, 4))) for _ in range(3)] for _ in range(rng.randint(0, 6))]
    text = "".join(",".join(rfc4180(f) for f in row) + rng.choice(["\n", "\r\n", "\r"]) for row in rows)
    if rng.random() < 0.3:  # no line break after the last record
        text = text.rstrip("\r\n") if not text.endswith(('"\n', '"\r')) else text
    return text.encode(), [r for r in csv.reader(io.StringIO(text, newline="")) if r]


def chunks(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)] or [data]


def test_the_count_agrees_with_pythons_csv_module_whatever_the_chunk_size():
    rng = random.Random(29)
    for _ in range(500):
        data, rows = random_csv(rng)
        for size in (1, 2, 5, 1 << 20):  # a CRLF or a quoted field split between two chunks
            assert count_records(chunks(data, size)) == len(rows), (data, size)


@pytest.mark.parametrize(
    "data, records",
    [
        (b"h\r\n1\r\n2\n3\r4\r\n", 5),  # every line ending in one file
        (b'h\n1,"a\r\nb"\r2', 3),  # a quoted CRLF is inside a record; no break after the last
        (b"h\n\n   \n\t\r\n1\n", 2),  # blank lines are no records (Spark's reader skips them too)
        (b'h\n""\n', 2),  # an empty quoted field is a record
        (b"", 0),
    ],
)
def test_records_by_hand(data, records):
    assert count_records([data]) == records


def test_arrow_parses_quoted_breaks_any_line_ending_and_ragged_records(tmp_path):
    path = tmp_path / "export.csv"
    path.write_bytes(b'\xef\xbb\xbfa,b,c\r\n1,"two\nlines",x\r2,,\n   \n3,"q""uote"\r\n4\n5,y,z,extra\n')
    table = parse_records(str(path), 3)
    rows = sorted(zip(*(table.column(n).to_pylist() for n in ("c0", "c1", "c2")), strict=True))
    assert rows == [
        ("1", "two\nlines", "x"),
        ("2", None, None),
        ("3", 'q"uote', None),
        ("4", None, None),  # too few fields: nulls, as Spark's reader gives
        ("5", "y", "z"),  # too many: the extra one dropped, as Spark's reader does
    ]
    assert count_file_records(str(path)) == len(rows)


def test_a_gzipped_file_is_counted_from_its_content(tmp_path):
    import gzip

    path = tmp_path / "export.csv.gz"
    path.write_bytes(gzip.compress(b"h\r\n1\n2\r3\n"))
    assert count_file_records(str(path)) == 3
