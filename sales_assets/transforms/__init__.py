"""Pure PySpark transforms (DataFrame -> DataFrame). No Dagster imports here."""
