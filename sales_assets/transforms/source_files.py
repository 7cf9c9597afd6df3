"""Which files a `source_path` names, in which format, with which header (docs/contract.md,
"Reading files"). Plain Python: a listing and each file's first bytes, before Spark reads anything."""

from __future__ import annotations

import csv
import glob
import io
import os
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

PARQUET_SUFFIXES = (".parquet", ".pq")
CSV_SUFFIXES = (".csv", ".csv.gz", ".txt", ".txt.gz")
PARQUET_MAGIC = b"PAR1"
BOM = "\ufeff"
GLOB_CHARACTERS = "*?["
HEADER_BYTES = 1 << 16  # a header longer than this is not a header
HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"


class SourceFileError(ValueError):
    pass


@dataclass(frozen=True)
class SourceFiles:
    """The files a `source_path` names: one format, sorted; `root` is the folder their hive-style
    folder names (`region=…`) are read below."""

    format: str  # "csv" or "parquet"
    files: tuple[str, ...]
    root: str

    def hive_columns(self) -> list[str]:
        """Columns that hive-style folder names (`region=Z%C3%BCrich`) below `root` give the files."""
        names = set()
        for file in self.files:
            relative = os.path.relpath(os.path.dirname(file), self.root)
            names |= {unquote(f.split("=", 1)[0]).strip().lower() for f in relative.split(os.sep) if "=" in f}
        return sorted(names)


def local_path(path: str) -> str | None:
    """The local filesystem path of `path`, or None for another scheme (hdfs://, s3a://, …)."""
    parts = urlsplit(path)
    if parts.scheme == "file":
        return unquote(parts.path)
    return path if parts.scheme in ("", None) or len(parts.scheme) == 1 else None


def _hidden(name: str) -> bool:
    # Spark's and Hadoop's markers and checksums (`_SUCCESS`, `.part-0.crc`); `_col=x` folders stay
    return name.startswith((".", "_")) and "=" not in name


def _walk(folder: str) -> list[str]:
    """The data files below `folder`, symbolic links followed (each real folder once); a folder
    that cannot be listed fails rather than being skipped."""
    found, seen = [], set()

    def refuse(error: OSError) -> None:
        raise SourceFileError(f"source_path {error.filename} cannot be listed: {error.strerror}")

    for parent, folders, names in os.walk(folder, onerror=refuse, followlinks=True):
        real = os.path.realpath(parent)
        if real in seen:  # a link back up the tree
            folders[:] = []
            continue
        seen.add(real)
        folders[:] = sorted(f for f in folders if not _hidden(f))
        found += [os.path.join(parent, n) for n in sorted(names) if not _hidden(n)]
    return found


def _format_of(file: str) -> str | None:
    name = file.lower()
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    if "." in os.path.basename(name):
        return None
    with open(file, "rb") as f:  # a part file without a suffix: Parquet starts with its magic
        return "parquet" if f.read(4) == PARQUET_MAGIC else "csv"


def list_source(path: str) -> SourceFiles:
    """The files of `path`: a file, a folder (read recursively, hidden files aside) or a glob.
    Fails naming what is wrong: nothing there, unreadable or empty files, an unknown suffix, CSV
    and Parquet mixed."""
    local = local_path(path)
    if local is None:
        raise SourceFileError(
            f"source_path {path}: only local paths are read (a file, folder or glob that this process and "
            "the Spark server see at the same place); copy the files there"
        )
    local = os.path.abspath(local)  # Spark names files by absolute path: the same names on both sides
    if any(c in local for c in GLOB_CHARACTERS) and not os.path.exists(local):
        matches = [m for m in sorted(glob.glob(local, recursive=True)) if not _hidden(os.path.basename(m))]
        if not matches:
            raise SourceFileError(f"source_path {path} matches no file")
        # `**` matches a folder and the files in it: each file once
        files = list(dict.fromkeys(f for m in matches for f in (_walk(m) if os.path.isdir(m) else [m])))
        prefix = min((local.split(c)[0] for c in GLOB_CHARACTERS), key=len)
        root = prefix[: prefix.rfind("/")] or "/"
    elif os.path.isdir(local):
        files, root = _walk(local), local
        if not files:
            raise SourceFileError(f"source_path {path} is a folder without data files")
    elif os.path.exists(local):
        files, root = [local], os.path.dirname(local)
    else:
        raise SourceFileError(f"source_path {path} does not exist")
    for file in files:
        if not os.access(file, os.R_OK):
            raise SourceFileError(f"source_path {file} is not readable")
    files = [f for f in files if os.path.getsize(f) > 0 or _empty_error(f)]
    formats = {f: _format_of(f) for f in files}
    unknown = [f for f, kind in formats.items() if kind is None]
    if unknown:
        raise SourceFileError(
            f"source_path {unknown[0]} must end in .csv, .csv.gz, .txt or .parquet (or be a part file without a suffix)"
        )
    kinds = sorted(set(formats.values()))
    if len(kinds) > 1:
        example = {kind: next(f for f, k in formats.items() if k == kind) for kind in kinds}
        raise SourceFileError(
            f"source_path {path} mixes CSV ({example['csv']}) and Parquet ({example['parquet']}): give one format"
        )
    return SourceFiles(kinds[0], tuple(files), root)


def _empty_error(file: str) -> bool:
    raise SourceFileError(f"source_path {file} is empty")


def csv_header(file: str) -> list[str]:
    """The fields of a CSV file's first record (its header), read from its first bytes: UTF-8, a
    byte order mark dropped, ended by CR, LF or CRLF."""
    from sales_assets.transforms.csv_records import open_source

    try:
        with open_source(file) as f:
            head = f.read(HEADER_BYTES)
    except (OSError, EOFError) as exc:
        raise SourceFileError(f"cannot read source_path {file}: {exc}") from None
    text = head.decode("utf-8", errors="replace").lstrip(BOM)
    line = text.replace("\r\n", "\n").replace("\r", "\n").split("\n", 1)[0]
    return next(csv.reader(io.StringIO(line)), [])
