"""Real exports, second round: files shaped the way Excel, pandas, Hive, Impala and Spark write them,
each through the real run (docs/contract.md, "Reading files"). Every one of these loaded wrong data
without failing, or failed with a headline nobody could act on, before the reader was rebuilt."""

from __future__ import annotations

import os
import unicodedata
from datetime import datetime
from decimal import Decimal

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dagster import DagsterEventType

from sales_assets.contract import RAW_COLUMNS
from sales_assets.resources.run_date import RUN_DATE_TAG
from sales_assets_tests.helpers import failure_messages, query

pytestmark = pytest.mark.integration
TAGS = {RUN_DATE_TAG: "2026-12-01"}
HEADER = ",".join(RAW_COLUMNS)
D = Decimal


def line(sale_id: int, product="Widget", region="Kazan", ts="2026-11-01 10:00:00", price="2.00") -> str:
    return f"{sale_id},{100 + sale_id},7,{product},Tools,{region},1,{price},{price},{ts}"


def cleaned(pg, columns="sale_id, product, region, sale_ts"):
    return query(pg, f"select {columns} from sales.cleaned_sales order by sale_id")


def rejected(pg):
    return query(pg, "select sale_id, reason from sales.rejected_sales order by sale_id")


def raw_count_check(result):
    return next(e for e in result.get_asset_check_evaluations() if e.check_name == "raw_row_count_as_requested")


def step_attempts(result, step: str) -> int:
    """How many times `step` started in the run (a retried step starts again)."""
    started = (DagsterEventType.STEP_START, DagsterEventType.STEP_RESTARTED)
    return sum(1 for e in result.all_events if e.step_key == step and e.event_type in started)


def test_mixed_line_endings_lose_no_line_and_the_count_check_agrees(run_job, pg, tmp_path):
    # a CRLF export with LF lines appended, then a CR line and a CRLF line: seven records
    data = (f"{HEADER}\r\n{line(1)}\r\n{line(2)}\r\n{line(3)}\n{line(4)}\n{line(5)}\r{line(6)}\r\n{line(7)}\n").encode()
    path = tmp_path / "joined.csv"
    path.write_bytes(data)
    result = run_job(tags=TAGS, source_path=str(path))
    assert result.success
    assert [r[0] for r in cleaned(pg)] == [1, 2, 3, 4, 5, 6, 7]
    check = raw_count_check(result)
    assert check.passed and check.metadata["expected_rows"].value == 7


def test_mixed_line_endings_with_a_quoted_line_break_lose_no_line(run_job, pg, tmp_path):
    data = (
        f"{HEADER}\r\n{line(1, product=chr(34) + 'Two' + chr(10) + 'Lines' + chr(34))}\r\n{line(2)}\n"
        f"{line(3)}\r{line(4)}\r\n   \n{line(5)},extra\n"
    ).encode()
    path = tmp_path / "quoted_break.csv"
    path.write_bytes(data)
    result = run_job(tags=TAGS, source_path=str(path))
    assert result.success
    assert [r[:2] for r in cleaned(pg)] == [
        (1, "Two Lines"),
        (2, "Widget"),
        (3, "Widget"),
        (4, "Widget"),
        (5, "Widget"),
    ]
    assert raw_count_check(result).metadata["expected_rows"].value == 5  # the blank line is no record


def test_int96_timestamps_are_wall_times_and_pre_1900_sentinels_unparseable(run_job, pg, tmp_path):
    # Hive, Impala and older Spark write timestamps as INT96
    table = pa.table(
        {
            "sale_id": pa.array([1, 2], pa.int64()),
            "order_id": pa.array([11, 12], pa.int64()),
            "customer_id": pa.array([7, 7], pa.int64()),
            "product": ["Widget", "Widget"],
            "category": ["Tools", "Tools"],
            "region": ["Kazan", "Kazan"],
            "quantity": pa.array([1, 1], pa.int32()),
            "unit_price": pa.array([D("2.00"), D("2.00")], pa.decimal128(12, 2)),
            "amount": pa.array([D("2.00"), D("2.00")], pa.decimal128(12, 2)),
            "sale_ts": pa.array([datetime(2026, 11, 1, 10, 30, 0, 250000), datetime(1800, 1, 1)], pa.timestamp("us")),
        }
    )
    path = tmp_path / "hive.parquet"
    pq.write_table(table, path, use_deprecated_int96_timestamps=True)
    assert pq.ParquetFile(path).schema.column(9).physical_type == "INT96"
    result = run_job(tags=TAGS, source_path=str(path))
    assert result.success
    assert cleaned(pg, "sale_id, sale_ts") == [(1, datetime(2026, 11, 1, 10, 30, 0, 250000))]
    assert rejected(pg) == [("2", "unparseable")]


def test_zones_are_converted_or_the_value_is_unparseable_never_ignored(run_job, pg, tmp_path):
    stamps = {
        1: "2026-11-01T10:00:00+3",  # 07:00
        2: "2026-11-01 10:00:00 GMT+3",  # 07:00
        3: "2026-11-01 10:00:00 UTC+3",  # 07:00
        4: "2026-11-01 10:00:00 GMT-05:00",  # 15:00
        5: "2026-11-01 10:00:00-5",  # 15:00
        6: "2026-11-01 10:00:00 UTC",  # 10:00
        7: "2026-11-01 10:00:00 Europe/Moscow",  # 07:00
        8: "2026-11-01 10:00:00 EST",
        9: "2026-11-01 10:00:00 CET",
        10: "2026-11-01 10:00:00 IST",
        11: "2026-11-01 10:00:00 Europe/Mowcow",  # no such zone
        12: "2026-11",
        13: "2026",
        14: "2026-11-01",  # a whole date is a date
    }
    path = tmp_path / "zones.csv"
    path.write_text("\n".join([HEADER, *(line(i, ts=ts) for i, ts in stamps.items())]) + "\n")
    assert run_job(tags=TAGS, source_path=str(path)).success
    at = {i: datetime(2026, 11, 1, h) for i, h in {1: 7, 2: 7, 3: 7, 4: 15, 5: 15, 6: 10, 7: 7, 14: 0}.items()}
    assert cleaned(pg, "sale_id, sale_ts") == sorted(at.items())
    assert rejected(pg) == [(str(i), "unparseable") for i in (10, 11, 12, 13, 8, 9)]  # text order


def test_float_money_from_pandas_is_read_as_written_at_any_size(run_job, pg, tmp_path):
    frame = pd.DataFrame(
        {
            "sale_id": [1, 2, 3],
            "order_id": [11, 12, 13],
            "customer_id": [7, 7, 7],
            "product": ["Widget"] * 3,
            "category": ["Tools"] * 3,
            "region": ["Kazan"] * 3,
            "quantity": [1.0, 2.0, 1.0],
            "unit_price": [12345678.0, 19.99, 0.005],  # float64: pandas' default
            "amount": [12345678.0, 39.98, 0.005],
            "sale_ts": ["2026-11-01 10:00:00"] * 3,
        }
    )
    path = tmp_path / "float_money.parquet"
    frame.to_parquet(path)
    assert run_job(tags=TAGS, source_path=str(path)).success
    assert cleaned(pg, "sale_id, quantity, unit_price, amount") == [
        (1, 1, D("12345678.00"), D("12345678.00")),
        (2, 2, D("19.99"), D("39.98")),
    ]
    assert rejected(pg) == [("3", "unparseable")]  # a third decimal is never rounded
    assert query(pg, "select unit_price from sales.rejected_sales") == [("0.005",)]


def test_hive_folder_names_are_percent_decoded_as_utf8(run_job, pg, tmp_path):
    columns = [c for c in RAW_COLUMNS if c != "region"]
    for i, folder in enumerate(["region=Z%C3%BCrich", "region=S%C3%A3o Paulo", "region=A+B"], start=1):
        os.makedirs(tmp_path / "sales" / folder)
        values = line(i).split(",")
        frame = pd.DataFrame({c: [v] for c, v in zip(RAW_COLUMNS, values, strict=True) if c != "region"})[columns]
        frame.to_parquet(tmp_path / "sales" / folder / "part-00000.snappy.parquet")
    (tmp_path / "sales" / "_SUCCESS").write_bytes(b"")
    assert run_job(tags=TAGS, source_path=str(tmp_path / "sales")).success
    assert [r[2] for r in cleaned(pg)] == ["Zürich", "São Paulo", "A+b"]  # a plus stays a plus (canonical case)


def test_a_name_typed_two_ways_or_with_invisible_characters_is_one_name(run_job, pg, tmp_path):
    composed, decomposed = "Caf\u00e9", unicodedata.normalize("NFD", "Caf\u00e9")
    assert composed != decomposed
    rows = [
        line(1, product=composed, region="Z\u00fcrich"),
        line(2, product=decomposed, region=unicodedata.normalize("NFD", "Z\u00fcrich")),
        line(3, product="Ca\u200bf\u00e9", region="Z\u00fc\u2060rich"),  # zero-width space, word joiner
        line(4, product="\ufeffCaf\u00e9\u200d", region="Z\u00fcrich"),  # a BOM and a joiner inside the text
    ]
    path = tmp_path / "nfc.csv"
    path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    assert run_job(tags=TAGS, source_path=str(path)).success
    assert query(pg, "select grain, region, product, sales from sales.sales_aggregates order by grain") == [
        ("product", None, "Café", 4),
        ("region", "Zürich", None, 4),
        ("region_product", "Zürich", "Café", 4),
    ]
    assert {r[1] for r in cleaned(pg)} == {unicodedata.normalize("NFC", "Caf\u00e9")}


def test_excel_trailing_commas_and_a_folder_whose_files_order_columns_differently(run_job, pg, tmp_path):
    folder = tmp_path / "exports"
    folder.mkdir()
    # Excel: a trailing comma on every line, the header included (an untitled column)
    (folder / "monday.csv").write_text("\n".join([HEADER + ",", line(1) + ",", line(2) + ","]) + "\n")
    # the next day's export puts region first
    order = ["region", *[c for c in RAW_COLUMNS if c != "region"]]
    values = dict(zip(RAW_COLUMNS, line(3, region="Omsk").split(","), strict=True))
    (folder / "tuesday.csv").write_text(",".join(order) + "\n" + ",".join(values[c] for c in order) + "\n")
    (folder / ".tuesday.csv.crc").write_bytes(b"checksum")  # hidden: not a data file
    result = run_job(tags=TAGS, source_path=str(folder))
    assert result.success
    assert [r[:3] for r in cleaned(pg)] == [(1, "Widget", "Kazan"), (2, "Widget", "Kazan"), (3, "Widget", "Omsk")]
    assert raw_count_check(result).passed


def test_parquet_files_whose_types_drift_between_days_and_part_files_without_a_suffix(run_job, pg, tmp_path):
    folder = tmp_path / "spark_output"
    folder.mkdir()
    base = {c: [v] for c, v in zip(RAW_COLUMNS, line(1).split(","), strict=True)}
    day1 = pa.table(
        {**base, "sale_id": pa.array([1], pa.int32()), "unit_price": pa.array([D("2.00")], pa.decimal128(9, 2))}
    )
    day2 = pa.table({**base, "sale_id": pa.array([2], pa.int64()), "unit_price": pa.array([2.0], pa.float64())})
    pq.write_table(day1, folder / "part-00000")
    pq.write_table(day2, folder / "part-00001")
    result = run_job(tags=TAGS, source_path=str(folder))
    assert result.success
    assert cleaned(pg, "sale_id, unit_price") == [(1, D("2.00")), (2, D("2.00"))]


def test_a_glob_reads_every_matching_file(run_job, pg, tmp_path):
    for day in (1, 2, 3):
        (tmp_path / f"sales_2026-11-0{day}.csv").write_text(f"{HEADER}\n{line(day)}\n")
    (tmp_path / "notes.txt.bak").write_text("not matched")
    result = run_job(tags=TAGS, source_path=str(tmp_path / "sales_2026-11-*.csv"))
    assert result.success
    assert [r[0] for r in cleaned(pg)] == [1, 2, 3]
    assert raw_count_check(result).metadata["expected_rows"].value == 3


def test_a_deterministic_error_in_a_folder_fails_once_naming_the_file_and_the_cause(
    run_job, snapshot_of_everything, tmp_path
):
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "a.csv").write_text(f"{HEADER}\n{line(1)}\n")
    (folder / "b.csv").write_text(f"{HEADER},Region\n{line(2)},Omsk\n")
    result = run_job(tags=TAGS, source_path=str(folder), raise_on_error=False)
    assert not result.success
    message = failure_messages(result)
    assert message.splitlines()[0] == (
        f"dagster._core.definitions.events.Failure: SourceFileError: source_path {folder / 'b.csv'}: the header "
        f"has column(s) region more than once (names are case-insensitive); header found: '{HEADER},Region'"
    )
    assert step_attempts(result, "raw_sales") == 1  # never retried
    assert "max_retries" not in message
    assert snapshot_of_everything()  # no table touched


def test_a_file_that_breaks_while_stored_fails_once_naming_the_file(run_job, snapshot_of_everything, tmp_path):
    # the first file reads; the second has a sound footer and a damaged data page, found only when
    # the whole source is read (while raw_sales is stored)
    folder = tmp_path / "damaged"
    folder.mkdir()
    frame = pd.DataFrame({c: [v] * 50 for c, v in zip(RAW_COLUMNS, line(1).split(","), strict=True)})
    frame.to_parquet(folder / "a.parquet", compression=None)
    frame.assign(product=[f"Widget {i:03d}" for i in range(50)]).to_parquet(folder / "b.parquet", compression=None)
    data = bytearray((folder / "b.parquet").read_bytes())
    start = data.index(b"Widget 010")
    data[start : start + 200] = b"\xff" * 200
    (folder / "b.parquet").write_bytes(bytes(data))
    result = run_job(tags=TAGS, source_path=str(folder), raise_on_error=False)
    assert not result.success
    headline = failure_messages(result).splitlines()[0]
    assert headline.startswith(
        f"dagster._core.definitions.events.Failure: cannot read the source {folder} while storing raw_sales: "
    ), headline
    assert len(headline) < 300 and "Job aborted" not in headline and "\tat " not in headline
    assert step_attempts(result, "raw_sales") == 1
    assert snapshot_of_everything()  # no table touched, the raw Parquet included


def test_hive_folders_of_csv_any_case_null_marker_and_a_relative_path(run_job, pg, tmp_path, monkeypatch):
    # Arrow parses the file with a quoted line break; Spark's line reader the other: both get the
    # folder's value. Hive writes a null partition value as __HIVE_DEFAULT_PARTITION__.
    columns = ",".join(c for c in RAW_COLUMNS if c != "region")
    rows = {
        "Region=S%C3%A3o Paulo": f'{columns}\n1,101,7,"Two\nLines",Tools,1,2.00,2.00,2026-11-01 10:00:00\n',
        "region=Omsk": f"{columns}\n2,102,7,Widget,Tools,1,2.00,2.00,2026-11-01 10:00:00\n",
        "region=__HIVE_DEFAULT_PARTITION__": f"{columns}\n3,103,7,Widget,Tools,1,2.00,2.00,2026-11-01 10:00:00\n",
    }
    for folder, text in rows.items():
        (tmp_path / "exports" / folder).mkdir(parents=True)
        (tmp_path / "exports" / folder / "part-00000.csv").write_text(text)
    monkeypatch.chdir(tmp_path)
    result = run_job(tags=TAGS, source_path="exports")
    assert result.success
    assert cleaned(pg, "sale_id, product, region") == [(1, "Two Lines", "São Paulo"), (2, "Widget", "Omsk")]
    assert rejected(pg) == [("3", "missing_field")]  # no region
    assert raw_count_check(result).passed
