"""I/O managers: Parquet for Spark frames, PostgreSQL tables.

No imports here on purpose: Spark's Python workers import `pg_transfer` from this package, and
pulling Dagster into every worker costs ~1.3 s of CPU each."""
