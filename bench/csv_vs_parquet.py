"""The same generated lines as one CSV file and as Parquet, for timing `make run` on each.

    .venv/bin/python bench/csv_vs_parquet.py --rows 5000000 --out /tmp/sales_5m
    SALES_SOURCE_PATH=/tmp/sales_5m/sales.csv make run      # then .../sales.parquet

The CSV is RFC 4180 as the contract reads it (`"` escaped by doubling, whitespace kept), one file,
no quoted line breaks (the generator writes none): the case that is split over every core.
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
from datetime import date, timedelta

from pyspark.sql import SparkSession

from sales_assets.transforms.generate import generate_raw_sales


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", required=True, help="a folder for sales.csv and sales.parquet/")
    args = parser.parse_args()
    spark = SparkSession.builder.master("local[*]").config("spark.driver.memory", "4g").getOrCreate()
    today = date.today()
    raw = generate_raw_sales(
        spark, rows=args.rows, seed=args.seed, first_date=today - timedelta(days=364), last_date=today
    ).drop("import_date")  # a file carries the raw columns only
    parquet, csv_dir = os.path.join(args.out, "sales.parquet"), os.path.join(args.out, "csv.tmp")
    raw.write.mode("overwrite").parquet(parquet)
    stored = spark.read.parquet(parquet)
    stored.coalesce(1).write.mode("overwrite").csv(
        csv_dir,
        header=True,
        quote='"',
        escape='"',
        ignoreLeadingWhiteSpace=False,
        ignoreTrailingWhiteSpace=False,
    )
    (part,) = glob.glob(os.path.join(csv_dir, "part-*"))
    os.replace(part, os.path.join(args.out, "sales.csv"))
    shutil.rmtree(csv_dir)
    print(f"{stored.count():,} lines: {args.out}/sales.csv and {parquet}")
    spark.stop()


if __name__ == "__main__":
    main()
