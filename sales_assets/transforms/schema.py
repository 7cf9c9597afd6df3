"""Column names of the raw sales contract (DESIGN.md section 3)."""

RAW_COLUMNS: tuple[str, ...] = (
    "sale_id", "order_id", "customer_id", "product", "category", "region",
    "quantity", "unit_price", "amount", "sale_ts",
)

# Columns a line cannot do without (rejected as `missing_field` when null or blank).
REQUIRED_COLUMNS: tuple[str, ...] = (
    "sale_id", "order_id", "product", "region", "quantity", "unit_price", "sale_ts",
)

# Each rejected line gets exactly one reason: the first rule it breaks, in this order.
REJECT_REASONS: tuple[str, ...] = (
    "missing_field", "unparseable", "non_positive_quantity", "non_positive_price",
    "future_date", "duplicate",
)

TIMESTAMP_FORMAT = "yyyy-MM-dd HH:mm:ss"


def canonical_case(text: str) -> str:
    """Python twin of Spark's `initcap(lower(trim(...)))`: what normalization turns a name into."""
    return " ".join(w[:1].upper() + w[1:].lower() for w in " ".join(text.split()).split(" "))
