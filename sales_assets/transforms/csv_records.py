"""CSV records as docs/contract.md defines them, worked out from a file's bytes in a Spark worker.

Two readers that share no code with each other or with Spark's CSV source:
- `count_records`: a byte-level count (numpy) of the records of a file, for the row-count check, so
  that check never shares a bug with the reader it checks;
- `parse_records`: Apache Arrow's CSV parser, for the rare file in which a quoted field holds a line
  break (Spark splits such a file only on one core, and its multi-line reader accepts one kind of
  line ending per file).
Both follow the same rules: any of CRLF, LF or CR ends a record outside quotes; a line that holds
nothing but ASCII spaces and control characters is not a record (Spark's line reader skips it too);
the first record of a file is its header.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import numpy as np
import pyarrow as pa

QUOTE, CR, LF = ord('"'), ord("\r"), ord("\n")
CHUNK = 1 << 24  # bytes counted at a time: memory stays flat whatever the file's size


def open_source(path: str):
    """A binary stream of the file at `path` (a local path or a URI Arrow's filesystems know),
    decompressed when it ends in .gz."""
    from pyarrow import fs

    if "://" in path or path.startswith("file:"):
        filesystem, inner = fs.FileSystem.from_uri(path)
    else:
        filesystem, inner = fs.LocalFileSystem(), path
    compression = "gzip" if path.lower().endswith(".gz") else None
    return filesystem.open_input_stream(inner, compression=compression)


def count_records(chunks: Iterator[bytes]) -> int:
    """Records in a CSV file (its header included), from its bytes: a record ends at CR, LF or CRLF
    outside quotes, and counts when it holds a byte other than ASCII space or control characters
    (a quote counts, so `""` is a record). Quotes toggle: `""` inside a quoted field toggles twice.
    Vectorized per chunk, one byte-sized array at a time (no per-byte Python)."""
    records = 0
    in_quotes = False  # state carried from one chunk to the next
    content = False  # the current record has content so far
    last_cr = False  # the previous chunk ended in CR (a CRLF may span two chunks)
    for chunk in chunks:
        data = np.frombuffer(chunk, dtype=np.uint8)
        if not len(data):
            continue
        quotes = data == QUOTE
        # parity of the quotes so far: inside a quoted field where it is odd
        quoted = np.logical_xor.accumulate(quotes)
        if in_quotes:
            np.logical_not(quoted, out=quoted)
        breaks = (data == CR) | (data == LF)
        breaks &= ~quoted
        # the LF of a CRLF ends nothing: the CR before it did
        lf_after_cr = data[1:] == LF
        lf_after_cr &= data[:-1] == CR
        breaks[1:] &= ~lf_after_cr
        if last_cr and data[0] == LF:
            breaks[0] = False
        ends = np.flatnonzero(breaks)
        visible = data > 0x20
        visible |= quoted
        if len(ends):
            # a record counts when a visible byte lies between the previous end and its own:
            # reduceat over [start, end) pairs (an empty pair gives the end byte: never visible)
            bounds = np.empty(2 * len(ends), dtype=np.intp)
            bounds[0::2] = np.concatenate(([0], ends[:-1] + 1))
            bounds[1::2] = ends
            spans = np.logical_or.reduceat(visible, bounds)[0::2]
            spans[0] |= content
            records += int(np.count_nonzero(spans))
            content = bool(visible[ends[-1] + 1 :].any())
        else:
            content = content or bool(visible.any())
        in_quotes = bool(quoted[-1])
        last_cr = bool(data[-1] == CR)
    return records + (1 if content else 0)


def read_chunks(stream) -> Iterator[bytes]:
    while chunk := stream.read(CHUNK):
        yield chunk


def count_file_records(path: str) -> int:
    """Data records of the CSV file at `path`: its records less the header."""
    with open_source(path) as stream:
        return max(count_records(read_chunks(stream)) - 1, 0)


def positional_names(width: int) -> list[str]:
    """Column names by position (`c0`, `c1`, …): a header's own names may repeat or be blank."""
    return [f"c{i}" for i in range(width)]


def parse_records(path: str, width: int) -> pa.Table:
    """The data records of the CSV file at `path` as `width` text columns named by position (empty
    fields null), parsed by Arrow: quoted line breaks kept, any line ending. A record with more
    fields than the header loses the extra ones, one with fewer gets nulls (as Spark's reader does)."""
    import pyarrow.csv as pc

    names = positional_names(width)
    ragged: list[str] = []

    def set_aside(row) -> str:
        if any(c > " " for c in row.text):  # a blank line is no record, as in Spark's reader
            ragged.append(row.text)
        return "skip"  # set aside here, added back below: never dropped

    with open_source(path) as stream:
        table = pc.read_csv(
            stream,
            read_options=pc.ReadOptions(column_names=names, skip_rows=1),
            parse_options=pc.ParseOptions(
                quote_char='"',
                double_quote=True,
                escape_char=False,
                newlines_in_values=True,
                invalid_row_handler=set_aside,
            ),
            convert_options=pc.ConvertOptions(
                column_types={n: pa.string() for n in names},
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
                null_values=[""],
            ),
        )
    if not ragged:
        return table
    rows = [(next(csv.reader(io.StringIO(text, newline=""))) + [None] * width)[:width] for text in ragged]
    extra = pa.table({n: pa.array([r[i] or None for r in rows], pa.string()) for i, n in enumerate(names)})
    return pa.concat_tables([table, extra])
