"""Dev services: what the resources start on a machine without servers (the embedded PostgreSQL,
a local Spark standalone cluster, the JVM class archive). No Dagster here: the resources in
`sales_assets.resources` wrap these."""
