"""Column names and text rules of the raw sales contract (docs/contract.md)."""

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


# Unicode's White_Space characters (tab, line breaks, no-break space, em space, ...): what "trim"
# and "collapse" mean for names (docs/contract.md). Python's str.split() uses a slightly different
# set, so the twin below and the Spark rule both use this one.
UNICODE_WHITESPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
_WHITESPACE_TO_SPACE = str.maketrans(UNICODE_WHITESPACE, " " * len(UNICODE_WHITESPACE))


def normalized_space(text: str) -> str:
    """Unicode whitespace trimmed, inner runs collapsed to one ASCII space."""
    return " ".join(w for w in text.translate(_WHITESPACE_TO_SPACE).split(" ") if w)


def canonical_case(text: str) -> str:
    """Python twin of the Spark name rule: whitespace normalized, each word capitalized."""
    return " ".join(w[:1].upper() + w[1:].lower() for w in normalized_space(text).split(" "))
