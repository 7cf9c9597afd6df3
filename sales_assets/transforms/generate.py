"""Synthetic raw sales, generated Spark-natively.

Faker builds only the small dimension pools (products with categories and price tiers, regions);
every line is then a pure function of `(seed, line number)` evaluated by Spark, so generation is
deterministic for a seed, independent of partitioning, and has no per-row Python.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from faker import Faker
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from sales_assets.contract import RAW_COLUMNS, REJECT_REASONS, TIMESTAMP_FORMAT, canonical_case
from sales_assets.transforms.parallelism import default_parallelism
from sales_assets.transforms.sql import sql_literal

# category -> (price tier low, high, product nouns)
CATEGORIES: dict[str, tuple[float, float, tuple[str, ...]]] = {
    "Electronics": (49, 1500, ("Headphones", "Smartphone", "Laptop", "Monitor", "Speaker", "Camera")),
    "Home": (9, 300, ("Lamp", "Kettle", "Blanket", "Chair", "Vase", "Cookware Set")),
    "Groceries": (1, 30, ("Coffee", "Olive Oil", "Chocolate", "Tea", "Pasta", "Honey")),
    "Clothing": (10, 200, ("Jacket", "Sneakers", "Scarf", "Jeans", "Hoodie", "Dress")),
    "Books": (5, 60, ("Novel", "Cookbook", "Atlas", "Biography", "Comic", "Guide")),
    "Sports": (15, 400, ("Yoga Mat", "Bicycle Helmet", "Dumbbells", "Tent", "Ball", "Racket")),
    "Beauty": (5, 90, ("Perfume", "Face Cream", "Shampoo", "Lipstick", "Serum", "Soap")),
    "Toys": (8, 120, ("Puzzle", "Board Game", "Robot", "Doll", "Kite", "Building Set")),
}
N_REGIONS = 12
LINES_PER_BLOCK = 5  # an order never spans two blocks, so it has 1..5 lines
ORDER_START_PROB = 0.45  # chance that a line starts a new order inside its block
QUANTITY_WEIGHTS = (55, 22, 10, 5, 3, 2, 1, 1, 0.5, 0.5)  # quantity 1..10
WEEKDAY_WEIGHTS = (0.9, 0.9, 0.95, 1.0, 1.15, 1.35, 1.25)  # Mon..Sun
HOUR_WEIGHTS = (1, 0.5, 0.3, 0.2, 0.2, 0.4, 1, 2, 3, 4, 5, 5.5, 6, 6, 5.5, 5, 5.5, 6.5, 7.5, 7.5, 6.5, 5, 3, 2)
DISCOUNTS = (Decimal("1.00"), Decimal("1.00"), Decimal("1.00"), Decimal("0.95"), Decimal("0.90"))

# Kinds of dirty line, each about equally likely among the dirty ones: one per reject reason, in
# its order (the order picks the kind of each dirty line), and a wrong amount the cleaning repairs.
DIRTY_KINDS = (*REJECT_REASONS, "amount_repair")


@dataclass(frozen=True)
class Pools:
    products: tuple[str, ...]
    product_categories: tuple[str, ...]
    product_prices: tuple[Decimal, ...]
    product_weights: tuple[float, ...]
    regions: tuple[str, ...]
    region_weights: tuple[float, ...]


def build_pools(seed: int) -> Pools:
    """The small dimension pools, from a seeded Faker (same seed, same pools)."""
    fake = Faker("en_US")
    fake.seed_instance(seed)
    names, categories, prices = [], [], []
    for category, (low, high, nouns) in CATEGORIES.items():
        for noun in nouns:
            name = canonical_case(f"{fake.unique.last_name()} {noun}")
            # log-uniform inside the tier, ending in .99 like a shelf price
            price = math.exp(fake.pyfloat(min_value=math.log(low), max_value=math.log(high)))
            names.append(name)
            categories.append(category)
            prices.append(Decimal(max(1, int(price))) - Decimal("0.01"))
    order = list(range(len(names)))
    fake.random.shuffle(order)  # popularity rank independent of category
    product_weights = [0.0] * len(names)
    for rank, idx in enumerate(order):
        product_weights[idx] = 1.0 / (rank + 1) ** 0.8
    regions = []
    while len(regions) < N_REGIONS:
        city = canonical_case(fake.unique.city())
        if city not in regions:
            regions.append(city)
    region_weights = [1.0 / (rank + 1) ** 0.9 for rank in range(N_REGIONS)]
    return Pools(
        tuple(names), tuple(categories), tuple(prices), tuple(product_weights), tuple(regions), tuple(region_weights)
    )


# The generator is written as SQL expressions, one `selectExpr` per step: built from Column
# objects, building the plan alone costs a round trip per expression node (docs/performance.md).


def _uniform(seed: int, key: str, salt: str) -> str:
    """A deterministic uniform [0, 1) number per (seed, key, salt)."""
    return f"(pmod(xxhash64({int(seed)}, '{salt}', {key}), 2147483648) / 2147483648.0D)"


def _weighted_index(u: str, weights: tuple[float, ...] | list[float], buckets: int = 1024) -> str:
    """Maps a uniform number to an index drawn with `weights`, via a small lookup table."""
    total = sum(weights)
    table, cumulative, idx = [], weights[0] / total, 0
    for k in range(buckets):
        while (k + 0.5) / buckets > cumulative and idx < len(weights) - 1:
            idx += 1
            cumulative += weights[idx] / total
        table.append(idx)
    return f"element_at({_int_array_literal(table)}, CAST(floor({u} * {buckets}) + 1 AS INT))"


def _array_literal(values) -> str:
    return f"array({', '.join(sql_literal(v) for v in values)})"


def _int_array_literal(values) -> str:
    """A long integer array as one string literal, cast once by constant folding: parsing
    `array(0, 0, 1, ...)` took 1.1 s of a cold run for the 8,192 table entries; this is one token."""
    return f"CAST(split('{','.join(str(int(v)) for v in values)}', ',') AS ARRAY<INT>)"


def _pick(values, index: str) -> str:
    return f"element_at({_array_literal(values)}, {index} + 1)"


def _double(value: float) -> str:
    return f"{float(value)!r}D"


def _day_weights(first_day: date, days: int) -> list[float]:
    weights = []
    for offset in range(days):
        d = first_day + timedelta(days=offset)
        doy = d.timetuple().tm_yday
        holidays = 0.6 * math.exp(-(((doy - 350) / 18) ** 2))  # the December peak
        summer_dip = -0.15 * math.exp(-(((doy - 200) / 30) ** 2))
        weights.append(WEEKDAY_WEIGHTS[d.weekday()] * (1 + holidays + summer_dip))
    return weights


def generate_raw_sales(
    spark: SparkSession,
    *,
    rows: int,
    seed: int,
    run_date: date,
    days: int = 365,
    dirty_fraction: float = 0.02,
    num_partitions: int | None = None,
) -> DataFrame:
    """Exactly `rows` raw lines (all columns text, as a CSV would carry them) dated in the `days`
    days before `run_date`; about `dirty_fraction` of them dirty, spread over `DIRTY_KINDS`."""
    if rows <= 0:
        raise ValueError(f"rows must be positive, got {rows}")
    if days <= 0:
        raise ValueError(f"days must be positive, got {days}")
    if not 0 <= dirty_fraction <= 1:
        raise ValueError(f"dirty_fraction must be within [0, 1], got {dirty_fraction}")
    pools = build_pools(seed)
    first_day = run_date - timedelta(days=days)
    parts = num_partitions or max(1, min(default_parallelism(spark), -(-rows // 100_000)))

    def u(key: str, salt: str) -> str:
        return _uniform(seed, key, salt)

    # Built in steps: each step's columns are computed once and reused by the next step.
    kind_index = f"CAST(floor({u('id', 'kind')} * {len(DIRTY_KINDS)}) AS INT)"
    lines = spark.range(0, rows, numPartitions=parts).selectExpr(
        "id AS line",
        f"{u('id', 'dirty')} < {_double(dirty_fraction)} AS dirty",
        f"{_pick(DIRTY_KINDS, kind_index)} AS kind",
        f"CAST(floor({u('id', 'variant')} * 8) AS INT) AS variant",
    )
    # A duplicate line repeats the previous line (same sale_id, same content).
    lines = lines.selectExpr(
        "*", "CASE WHEN dirty AND kind = 'duplicate' AND line > 0 THEN line - 1 ELSE line END AS src"
    )

    # Order of the source line: the last line in its block that starts an order.
    block_start = f"(src - pmod(src, {LINES_PER_BLOCK}))"
    order_start = "CAST(NULL AS BIGINT)"
    for back in range(LINES_PER_BLOCK - 1, -1, -1):
        candidate = f"(src - {back})"
        starts = f"({candidate} = {block_start} OR {u(candidate, 'order')} < {_double(ORDER_START_PROB)})"
        order_start = f"CASE WHEN {candidate} >= {block_start} AND {starts} THEN {candidate} ELSE {order_start} END"
    lines = lines.selectExpr("*", f"{order_start} AS order_start")

    n_customers = max(50, rows // 8)
    discount = _pick([str(d) for d in DISCOUNTS], f"CAST(floor({u('src', 'discount')} * {len(DISCOUNTS)}) AS INT)")
    day = _weighted_index(u("order_start", "day"), _day_weights(first_day, days), buckets=4096)
    lines = lines.selectExpr(
        "*",
        f"{_weighted_index(u('src', 'product'), pools.product_weights)} AS product_idx",
        f"{_weighted_index(u('src', 'quantity'), QUANTITY_WEIGHTS)} + 1 AS qty",
        f"CAST({discount} AS DECIMAL(4,2)) AS discount",
        f"{_weighted_index(u('order_start', 'region'), pools.region_weights)} AS region_idx",
        f"date_add(DATE'{first_day.isoformat()}', {day}) AS day",
        f"{_weighted_index(u('order_start', 'hour'), HOUR_WEIGHTS)} AS hour",
        f"CAST(floor({u('order_start', 'second')} * 3600) AS INT) AS second_of_hour",
        # squared uniform: a minority of customers buys most often
        f"CAST(floor(pow({u('order_start', 'customer')}, 2) * {n_customers}) AS BIGINT) + 1 AS customer",
    )
    price = f"CAST({_pick([str(p) for p in pools.product_prices], 'product_idx')} AS DECIMAL(12,2))"
    lines = lines.selectExpr("*", f"CAST(round({price} * discount, 2) AS DECIMAL(12,2)) AS price")
    sale_ts = (
        "make_timestamp_ntz(year(day), month(day), dayofmonth(day), hour, "
        "CAST(floor(second_of_hour / 60) AS INT), CAST(pmod(second_of_hour, 60) AS DECIMAL(8,6)))"
    )
    clean = lines.selectExpr(
        "line",
        "dirty",
        "kind",
        "variant",
        "CAST(src + 1 AS STRING) AS sale_id",
        "CAST(order_start + 1 AS STRING) AS order_id",
        "CAST(customer AS STRING) AS customer_id",
        f"{_pick(pools.products, 'product_idx')} AS product",
        f"{_pick(pools.product_categories, 'product_idx')} AS category",
        f"{_pick(pools.regions, 'region_idx')} AS region",
        "CAST(qty AS STRING) AS quantity",
        "CAST(price AS STRING) AS unit_price",
        "CAST(CAST(qty * price AS DECIMAL(12,2)) AS STRING) AS amount",
        f"date_format({sale_ts}, '{TIMESTAMP_FORMAT}') AS sale_ts",
    )
    clean = _add_noise(clean, seed)
    # Dirt touches a few lines: a separate branch keeps the common path's generated code small
    # (one big CASE chain over every line is too big for the JIT: docs/performance.md).
    dirty_lines = _add_dirt(clean.filter("dirty"), run_date)
    return clean.filter("NOT dirty").select(*RAW_COLUMNS).unionByName(dirty_lines)


def _add_noise(df: DataFrame, seed: int) -> DataFrame:
    """Harmless noise that normalization must undo: odd case and stray whitespace (~8% of lines)."""
    messy = f"{_uniform(seed, 'line', 'messy')} < {_double(0.08)}"
    return df.withColumns(
        {
            "region": F.expr(
                f"CASE WHEN {messy} AND variant < 3 THEN concat('  ', lower(region), ' ') "
                f"WHEN {messy} AND variant < 6 THEN upper(region) ELSE region END"
            ),
            "product": F.expr(
                f"CASE WHEN {messy} AND variant >= 4 THEN concat(lower(product), char(9)) ELSE product END"
            ),
        }
    )


def _add_dirt(df: DataFrame, run_date: date) -> DataFrame:
    """Turns each line into the dirty kind drawn for it (`kind`, with `variant` choosing how)."""

    def maybe_missing(name: str, position: int, value: str | None = None) -> str:
        # Which required column a `missing_field` line lacks; odd variants are blank, even ones null.
        return (
            f"CASE WHEN kind = 'missing_field' AND pmod(variant, 7) = {position} THEN "
            f"(CASE WHEN variant % 2 = 1 THEN '  ' ELSE CAST(NULL AS STRING) END) "
            f"ELSE {value or name} END AS {name}"
        )

    def unparseable(position: int) -> str:
        return f"kind = 'unparseable' AND pmod(variant, 4) = {position}"

    quantity = (
        f"CASE WHEN {unparseable(0)} THEN 'two' "
        "WHEN kind = 'non_positive_quantity' THEN "
        "(CASE WHEN variant % 2 = 0 THEN '0' ELSE concat('-', quantity) END) ELSE quantity END"
    )
    unit_price = (
        f"CASE WHEN {unparseable(1)} THEN '12,5O' "
        "WHEN kind = 'non_positive_price' THEN "
        "(CASE WHEN variant % 2 = 0 THEN '0.00' ELSE concat('-', unit_price) END) ELSE unit_price END"
    )
    amount = (
        f"CASE WHEN {unparseable(2)} THEN 'n/a' "
        "WHEN kind = 'amount_repair' THEN (CASE WHEN variant % 2 = 0 THEN CAST(NULL AS STRING) "
        "ELSE CAST(CAST(CAST(amount AS DECIMAL(12,2)) + 1 AS DECIMAL(12,2)) AS STRING) END) "
        "ELSE amount END AS amount"
    )
    future_ts = (
        f"date_format(make_timestamp_ntz({run_date.year}, {run_date.month}, {run_date.day}, 12, 0, 0) "
        f"+ make_interval(0, 0, 0, variant + 1, 0, 0, 0), '{TIMESTAMP_FORMAT}')"
    )
    sale_ts = (
        f"CASE WHEN {unparseable(3)} THEN '31/02/2026 25:61' "
        f"WHEN kind = 'future_date' THEN {future_ts} ELSE sale_ts END"
    )
    return df.selectExpr(
        maybe_missing("sale_id", 0),
        maybe_missing("order_id", 1),
        "customer_id",
        maybe_missing("product", 2),
        "category",
        maybe_missing("region", 3),
        maybe_missing("quantity", 4, quantity),
        maybe_missing("unit_price", 5, unit_price),
        amount,
        maybe_missing("sale_ts", 6, sale_ts),
    )
