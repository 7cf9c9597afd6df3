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
    (a quote counts, so `""` is a record). Quotes toggle: `""` inside a quoted field toggles twice."""
    records = 0
    in_quotes = False  # state carried from one chunk to the next
    content = False  # the current record has content so far
    last_cr = False  # the previous chunk ended in CR (a CRLF may span two chunks)
    for chunk in chunks:
        data = np.frombuffer(chunk, dtype=np.uint8)
        if not len(data):
            continue
        quotes = data == QUOTE
        # quoted[i]: byte i lies inside quotes (after an odd number of quotes, counting from the start)
        quoted = (np.cumsum(quotes) + in_quotes) % 2 == 1
        breaks = ((data == CR) | (data == LF)) & ~quoted
        # the LF of a CRLF ends nothing: the CR before it did
        follows_cr = np.empty(len(data), dtype=bool)
        follows_cr[0] = last_cr
        follows_cr[1:] = data[:-1] == CR
        ends = breaks & ~((data == LF) & follows_cr)
        visible = (data > 0x20) | quoted
        # content seen since the previous end: cumulative visible bytes compared at each end
        seen = np.cumsum(visible)
        end_positions = np.flatnonzero(ends)
        if len(end_positions):
            at_end = seen[end_positions]
            before = np.concatenate(([0], at_end[:-1]))
            nonempty = at_end - before > 0
            nonempty[0] = nonempty[0] or content
            records += int(np.count_nonzero(nonempty))
            content = bool(seen[-1] - at_end[-1] > 0)
        else:
            content = content or bool(seen[-1] > 0)
        in_quotes = (in_quotes + int(np.count_nonzero(quotes))) % 2 == 1
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
