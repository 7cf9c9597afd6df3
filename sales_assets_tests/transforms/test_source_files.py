"""Which files a source_path names (transforms/source_files.py): a file, a folder, a glob."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sales_assets.transforms.source_files import SourceFileError, csv_header, list_source


def test_a_folder_is_read_recursively_without_hidden_files_and_with_part_files(tmp_path):
    (tmp_path / "region=Z%C3%BCrich").mkdir()
    pq.write_table(pa.table({"a": [1]}), tmp_path / "region=Z%C3%BCrich" / "part-00000")
    pq.write_table(pa.table({"a": [2]}), tmp_path / "part-00001.snappy.parquet")
    for hidden in ("_SUCCESS", ".part-00001.crc", "_committed_123"):
        (tmp_path / hidden).write_bytes(b"x")
    source = list_source(str(tmp_path))
    assert source.format == "parquet"
    assert [f.rsplit("/", 1)[-1] for f in source.files] == ["part-00001.snappy.parquet", "part-00000"]
    assert source.hive_columns() == ["region"]


def test_a_glob_and_csv_part_files(tmp_path):
    for name in ("sales_1.csv", "sales_2.csv", "other.csv"):
        (tmp_path / name).write_text("h\n1\n")
    (tmp_path / "part-00000").write_text("h\n1\n")  # no suffix, not Parquet: CSV
    assert [f.rsplit("/", 1)[-1] for f in list_source(str(tmp_path / "sales_*.csv")).files] == [
        "sales_1.csv",
        "sales_2.csv",
    ]
    assert list_source(str(tmp_path / "part-00000")).format == "csv"


@pytest.mark.parametrize(
    "files, error",
    [
        ({"a.csv": b"h\n1\n", "b.parquet": b"PAR1"}, "mixes CSV"),
        ({"a.csv": b"h\n1\n", "notes.md": b"x"}, "notes.md must end in .csv"),
        ({"a.csv": b""}, "a.csv is empty"),
        ({"_SUCCESS": b""}, "is a folder without data files"),
    ],
)
def test_a_folder_that_cannot_be_read_says_why(tmp_path, files, error):
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    with pytest.raises(SourceFileError, match=error):
        list_source(str(tmp_path))


def test_nothing_there(tmp_path):
    with pytest.raises(SourceFileError, match="matches no file"):
        list_source(str(tmp_path / "sales_*.csv"))
    with pytest.raises(SourceFileError, match="does not exist"):
        list_source(str(tmp_path / "sales.csv"))


def test_a_header_is_the_first_record_whatever_ends_it(tmp_path):
    path = tmp_path / "h.csv"
    path.write_bytes('\ufeff"sale_id","Order Id",\r1,2,\n'.encode())
    assert csv_header(str(path)) == ["sale_id", "Order Id", ""]


def test_a_recursive_glob_names_each_file_once_and_skips_hidden_ones(tmp_path):
    (tmp_path / "exports" / "day=1").mkdir(parents=True)
    for name in ("exports/a.csv", "exports/day=1/b.csv"):
        (tmp_path / name).write_text("h\n1\n")
    (tmp_path / "exports" / "_SUCCESS").write_bytes(b"")
    files = list_source(str(tmp_path / "exports" / "**")).files
    assert sorted(f.rsplit("/", 2)[-2:] for f in files) == [["day=1", "b.csv"], ["exports", "a.csv"]]


def test_a_relative_path_is_made_absolute_and_other_filesystems_are_refused(tmp_path, monkeypatch):
    (tmp_path / "sales.csv").write_text("h\n1\n")
    monkeypatch.chdir(tmp_path)
    assert list_source("sales.csv").files == (str(tmp_path / "sales.csv"),)
    with pytest.raises(SourceFileError, match="only local paths are read"):
        list_source("s3a://bucket/sales.csv")
