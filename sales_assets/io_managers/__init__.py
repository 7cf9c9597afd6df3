"""I/O managers: every table a run writes is written here, named in the asset's decorator.

Parquet for Spark frames (`raw_sales`), PostgreSQL tables (`cleaned_sales`, `rejected_sales`,
`sales_aggregates`), ClickHouse snapshots (`clickhouse_sales_aggregates`). Each requires the run
lock, so a run that writes anything holds it from its first step to its last."""
