"""Synthetic raw sales, generated Spark-natively.

Faker builds only the small dimension pools (products with categories and price tiers, regions);
every line is then a pure function of `(seed, import date, line number in the date)` evaluated by
Spark, so generation is deterministic for a seed, independent of partitioning and of the range a
date is generated in, and has no per-row Python.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from faker import Faker
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from sales_assets.contract import IMPORT_DATE, RAW_COLUMNS, REJECT_REASONS, TIMESTAMP_FORMAT, canonical_case
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


# Deliveries: the delivery of import date D holds the sales of the day before D. Lines per date
# follow a 365-date cycle anchored here, so any 365 consecutive dates hold exactly `rows` lines.
CYCLE_ORIGIN = date(2025, 1, 1)
CYCLE_DAYS = 365
EPOCH = date(1970, 1, 1)
DATE_ID_BASE = 2**32  # sale_id / order_id = day_number(D) * 2^32 + line of the date: ids never depend on `rows`


def day_number(d: date) -> int:
    """Days since 1970-01-01 (Spark's `unix_date`)."""
    return (d - EPOCH).days


def _sale_day_weight(sale_day: date) -> float:
    doy = sale_day.timetuple().tm_yday
    holidays = 0.6 * math.exp(-(((doy - 350) / 18) ** 2))  # the December peak
    summer_dip = -0.15 * math.exp(-(((doy - 200) / 30) ** 2))
    return WEEKDAY_WEIGHTS[sale_day.weekday()] * (1 + holidays + summer_dip)


@functools.cache
def lines_per_date(rows: int) -> tuple[int, ...]:
    """`rows` split over the 365-date cycle by the weekday and season of each delivery's sale day
    (largest remainder, ties to the earlier slot): the counts sum to `rows` exactly. The cycle
    repeats every 365 dates, so its weekday peak drifts by one weekday a year."""
    weights = [_sale_day_weight(CYCLE_ORIGIN + timedelta(days=k - 1)) for k in range(CYCLE_DAYS)]
    total = sum(weights)
    shares = [rows * w / total for w in weights]
    counts = [math.floor(s) for s in shares]
    by_remainder = sorted(range(CYCLE_DAYS), key=lambda k: (-(shares[k] - counts[k]), k))
    for k in by_remainder[: rows - sum(counts)]:
        counts[k] += 1
    return tuple(counts)


def lines_on(import_date: date, rows: int) -> int:
    """Generated lines delivered on `import_date`: n(D) = c[(D - 2025-01-01) mod 365]."""
    return lines_per_date(rows)[(import_date - CYCLE_ORIGIN).days % CYCLE_DAYS]


def generate_raw_sales(
    spark: SparkSession,
    *,
    rows: int,
    seed: int,
    first_date: date,
    last_date: date,
    dirty_fraction: float = 0.02,
    num_partitions: int | None = None,
) -> DataFrame:
    """The deliveries of the import dates `first_date`..`last_date`: the raw lines (all columns text,
    as a CSV would carry them) plus `import_date`. Delivery D holds `lines_on(D, rows)` lines sold on
    the day before D, so any 365 consecutive dates hold exactly `rows`; about `dirty_fraction` of them
    are dirty, spread over `DIRTY_KINDS`. Each line is a function of (seed, D, its number in D):
    a date is the same generated alone or inside any range."""
    if rows < CYCLE_DAYS:
        raise ValueError(f"rows must be at least {CYCLE_DAYS} (one line a day), got {rows}")
    if last_date < first_date:
        raise ValueError(f"the dates run backwards: {first_date} .. {last_date}")
    if not 0 <= dirty_fraction <= 1:
        raise ValueError(f"dirty_fraction must be within [0, 1], got {dirty_fraction}")
    pools = build_pools(seed)
    dates = (last_date - first_date).days + 1
    expected = rows * (dates // CYCLE_DAYS) + sum(
        lines_on(first_date + timedelta(days=k), rows) for k in range(dates % CYCLE_DAYS)
    )
    parts = num_partitions or max(1, min(default_parallelism(spark), -(-expected // 100_000), dates))

    def u(key: str, salt: str) -> str:
        return _uniform(seed, key, salt)

    # One row per date, then its lines: the dates spread over the partitions, each date's lines in one.
    cycle = _int_array_literal(lines_per_date(rows))
    first_day = day_number(first_date)
    per_date = spark.range(first_day, first_day + dates, numPartitions=parts).selectExpr(
        "id AS day_number",
        f"element_at({cycle}, CAST(pmod(id - {day_number(CYCLE_ORIGIN)}, {CYCLE_DAYS}) + 1 AS INT)) AS n",
    )
    kind_index = f"CAST(floor({u('line', 'kind')} * {len(DIRTY_KINDS)}) AS INT)"
    lines = (
        per_date.filter("n > 0")
        .selectExpr("day_number", "explode(sequence(0, n - 1)) AS i")
        .selectExpr("day_number", "i", f"day_number * {DATE_ID_BASE} + i AS line")
        .selectExpr(
            "day_number",
            "i",
            "line",
            f"{u('line', 'dirty')} < {_double(dirty_fraction)} AS dirty",
            f"{_pick(DIRTY_KINDS, kind_index)} AS kind",
            f"CAST(floor({u('line', 'variant')} * 8) AS INT) AS variant",
        )
    )
    # A duplicate line repeats the previous line of its date (same sale_id, same content): only a
    # clean one, so that the copies are identical and either may be kept.
    previous_clean = f"NOT ({u('(line - 1)', 'dirty')} < {_double(dirty_fraction)})"
    lines = lines.selectExpr(
        "*",
        f"CASE WHEN dirty AND kind = 'duplicate' AND i > 0 AND {previous_clean} THEN line - 1 ELSE line END AS src",
    )

    # Order of the source line: the last line in its block (of the date) that starts an order.
    block_start = f"(src - pmod(src - day_number * {DATE_ID_BASE}, {LINES_PER_BLOCK}))"
    order_start = "CAST(NULL AS BIGINT)"
    for back in range(LINES_PER_BLOCK - 1, -1, -1):
        candidate = f"(src - {back})"
        starts = f"({candidate} = {block_start} OR {u(candidate, 'order')} < {_double(ORDER_START_PROB)})"
        order_start = f"CASE WHEN {candidate} >= {block_start} AND {starts} THEN {candidate} ELSE {order_start} END"
    lines = lines.selectExpr("*", f"{order_start} AS order_start")

    n_customers = max(50, rows // 8)
    discount = _pick([str(d) for d in DISCOUNTS], f"CAST(floor({u('src', 'discount')} * {len(DISCOUNTS)}) AS INT)")
    lines = lines.selectExpr(
        "*",
        f"{_weighted_index(u('src', 'product'), pools.product_weights)} AS product_idx",
        f"{_weighted_index(u('src', 'quantity'), QUANTITY_WEIGHTS)} + 1 AS qty",
        f"CAST({discount} AS DECIMAL(4,2)) AS discount",
        f"{_weighted_index(u('order_start', 'region'), pools.region_weights)} AS region_idx",
        "date_from_unix_date(CAST(day_number AS INT)) AS import_date",
        "date_from_unix_date(CAST(day_number - 1 AS INT)) AS day",
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
        "import_date",
        "CAST(src AS STRING) AS sale_id",
        "CAST(order_start AS STRING) AS order_id",
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
    dirty_lines = _add_dirt(clean.filter("dirty"))
    return clean.filter("NOT dirty").select(*RAW_COLUMNS, IMPORT_DATE).unionByName(dirty_lines)


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


def _add_dirt(df: DataFrame) -> DataFrame:
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
    # noon of the import date plus 1..8 days: after the delivery's own day, so `future_date`
    future_ts = (
        "date_format(make_timestamp_ntz(year(import_date), month(import_date), dayofmonth(import_date), 12, 0, 0) "
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
        IMPORT_DATE,
    )
