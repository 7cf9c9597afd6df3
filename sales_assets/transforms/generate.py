"""Synthetic raw sales, generated Spark-natively.

Faker builds only the small dimension pools (products with categories and price tiers, regions);
every line is then a pure function of `(seed, line number)` evaluated by Spark, so generation is
deterministic for a seed, independent of partitioning, and has no per-row Python.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from faker import Faker
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from sales_assets.transforms.schema import RAW_COLUMNS, TIMESTAMP_FORMAT, canonical_case

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

# Kinds of dirty line, each about equally likely among the dirty ones.
DIRTY_KINDS = (
    "missing_field", "unparseable", "non_positive_quantity", "non_positive_price",
    "future_date", "duplicate", "amount_repair",
)


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
    return Pools(tuple(names), tuple(categories), tuple(prices), tuple(product_weights),
                 tuple(regions), tuple(region_weights))


def _uniform(seed: int, key: Column, salt: str) -> Column:
    """A deterministic uniform [0, 1) number per (seed, key, salt)."""
    return F.pmod(F.xxhash64(F.lit(seed), F.lit(salt), key), F.lit(1 << 31)) / float(1 << 31)


def _weighted_index(u: Column, weights: tuple[float, ...] | list[float], buckets: int = 1024) -> Column:
    """Maps a uniform number to an index drawn with `weights`, via a small lookup table."""
    total = sum(weights)
    table, cumulative, idx = [], weights[0] / total, 0
    for k in range(buckets):
        while (k + 0.5) / buckets > cumulative and idx < len(weights) - 1:
            idx += 1
            cumulative += weights[idx] / total
        table.append(idx)
    return F.element_at(_array_literal(table), (F.floor(u * buckets) + 1).cast("int"))


def _array_literal(values) -> Column:
    """One SQL array literal: parsed once, where one `F.lit` per element costs a JVM call each
    (seconds for the lookup tables here)."""
    def sql(v) -> str:
        if isinstance(v, int):
            return str(v)
        return "'" + str(v).replace("\\", "\\\\").replace("'", "\\'") + "'"
    return F.expr(f"array({', '.join(sql(v) for v in values)})")


def _pick(values, index: Column) -> Column:
    return F.element_at(_array_literal(values), index + 1)


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
    parts = num_partitions or max(1, min(spark.sparkContext.defaultParallelism, -(-rows // 100_000)))

    line = F.col("id")
    dirty = _uniform(seed, line, "dirty") < dirty_fraction
    kind = _pick(DIRTY_KINDS, F.floor(_uniform(seed, line, "kind") * len(DIRTY_KINDS)).cast("int"))
    # Built in steps: each step's columns are computed once and reused by the next step.
    lines = spark.range(0, rows, numPartitions=parts).select(
        line.alias("line"), dirty.alias("dirty"), kind.alias("kind"),
        F.floor(_uniform(seed, line, "variant") * 8).cast("int").alias("variant"),
    )
    # A duplicate line repeats the previous line (same sale_id, same content).
    is_dup = F.col("dirty") & (F.col("kind") == "duplicate") & (F.col("line") > 0)
    lines = lines.withColumn("src", F.when(is_dup, F.col("line") - 1).otherwise(F.col("line")))

    # Order of the source line: the last line in its block that starts an order.
    src = F.col("src")
    block_start = src - F.pmod(src, F.lit(LINES_PER_BLOCK))
    order_start = F.lit(None).cast("long")
    for back in range(LINES_PER_BLOCK - 1, -1, -1):
        candidate = src - back
        starts = (candidate == block_start) | (_uniform(seed, candidate, "order") < ORDER_START_PROB)
        order_start = F.when((candidate >= block_start) & starts, candidate).otherwise(order_start)
    lines = lines.withColumn("order_start", order_start)

    order = F.col("order_start")
    n_customers = max(50, rows // 8)
    lines = lines.select(
        "*",
        _weighted_index(_uniform(seed, src, "product"), pools.product_weights).alias("product_idx"),
        (_weighted_index(_uniform(seed, src, "quantity"), QUANTITY_WEIGHTS) + 1).alias("qty"),
        _pick([str(d) for d in DISCOUNTS], F.floor(_uniform(seed, src, "discount") * len(DISCOUNTS)).cast("int"))
        .cast("decimal(4,2)").alias("discount"),
        _weighted_index(_uniform(seed, order, "region"), pools.region_weights).alias("region_idx"),
        F.date_add(F.lit(first_day), _weighted_index(_uniform(seed, order, "day"), _day_weights(first_day, days),
                                                     buckets=4096)).alias("day"),
        _weighted_index(_uniform(seed, order, "hour"), HOUR_WEIGHTS).alias("hour"),
        F.floor(_uniform(seed, order, "second") * 3600).cast("int").alias("second_of_hour"),
        # squared uniform: a minority of customers buys most often
        (F.floor(F.pow(_uniform(seed, order, "customer"), 2) * n_customers).cast("long") + 1).alias("customer"),
    )
    product = F.col("product_idx")
    lines = lines.withColumn(
        "price",
        F.round(_pick([str(p) for p in pools.product_prices], product).cast("decimal(12,2)") * F.col("discount"), 2)
        .cast("decimal(12,2)"),
    )
    sale_ts = F.make_timestamp_ntz(
        F.year("day"), F.month("day"), F.dayofmonth("day"), F.col("hour"),
        F.floor(F.col("second_of_hour") / 60).cast("int"),
        F.pmod(F.col("second_of_hour"), F.lit(60)).cast("decimal(8,6)"),
    )
    clean = lines.select(
        "line", "dirty", "kind", "variant",
        (src + 1).cast("string").alias("sale_id"),
        (order + 1).cast("string").alias("order_id"),
        F.col("customer").cast("string").alias("customer_id"),
        _pick(pools.products, product).alias("product"),
        _pick(pools.product_categories, product).alias("category"),
        _pick(pools.regions, F.col("region_idx")).alias("region"),
        F.col("qty").cast("string").alias("quantity"),
        F.col("price").cast("string").alias("unit_price"),
        (F.col("qty") * F.col("price")).cast("decimal(12,2)").cast("string").alias("amount"),
        F.date_format(sale_ts, TIMESTAMP_FORMAT).alias("sale_ts"),
    )
    clean = _add_noise(clean, seed)
    # Dirt touches ~2% of lines: a separate branch keeps the common path's generated code small
    # (one big CASE chain over every line made the whole stage ~5x slower).
    dirty_lines = _add_dirt(clean.filter(F.col("dirty")), run_date)
    return clean.filter(~F.col("dirty")).select(*RAW_COLUMNS).unionByName(dirty_lines)


def _add_noise(df: DataFrame, seed: int) -> DataFrame:
    """Harmless noise that normalization must undo: odd case and stray whitespace (~8% of lines)."""
    variant = F.col("variant")
    messy = _uniform(seed, F.col("line"), "messy") < 0.08
    region = F.when(messy & (variant < 3), F.concat(F.lit("  "), F.lower("region"), F.lit(" "))) \
        .when(messy & (variant < 6), F.upper("region")).otherwise(F.col("region"))
    product = F.when(messy & (variant >= 4), F.concat(F.lower("product"), F.lit("\t"))).otherwise(F.col("product"))
    return df.withColumns({"region": region, "product": product})


def _add_dirt(df: DataFrame, run_date: date) -> DataFrame:
    """Turns each line into the dirty kind drawn for it (`kind`, with `variant` choosing how)."""
    variant = F.col("variant")

    def dirty_as(name: str) -> Column:
        return F.col("kind") == name

    # Which required column a `missing_field` line lacks; odd variants are blank, even ones null.
    missing_col = F.pmod(variant, F.lit(7))

    def maybe_missing(name: str, position: int, value: Column) -> Column:
        return F.when(dirty_as("missing_field") & (missing_col == position),
                      F.when(variant % 2 == 1, F.lit("  ")).otherwise(F.lit(None).cast("string"))) \
            .otherwise(value)

    unparseable_col = F.pmod(variant, F.lit(4))
    quantity = F.when(dirty_as("unparseable") & (unparseable_col == 0), F.lit("two")) \
        .when(dirty_as("non_positive_quantity"), F.when(variant % 2 == 0, F.lit("0"))
              .otherwise(F.concat(F.lit("-"), F.col("quantity")))) \
        .otherwise(F.col("quantity"))
    unit_price = F.when(dirty_as("unparseable") & (unparseable_col == 1), F.lit("12,5O")) \
        .when(dirty_as("non_positive_price"), F.when(variant % 2 == 0, F.lit("0.00"))
              .otherwise(F.concat(F.lit("-"), F.col("unit_price")))) \
        .otherwise(F.col("unit_price"))
    amount = F.when(dirty_as("unparseable") & (unparseable_col == 2), F.lit("n/a")) \
        .when(dirty_as("amount_repair"), F.when(variant % 2 == 0, F.lit(None).cast("string"))
              .otherwise((F.col("amount").cast("decimal(12,2)") + F.lit(1)).cast("decimal(12,2)").cast("string"))) \
        .otherwise(F.col("amount"))
    future_ts = F.date_format(
        F.make_timestamp_ntz(F.lit(run_date.year), F.lit(run_date.month), F.lit(run_date.day),
                             F.lit(12), F.lit(0), F.lit(0)) + F.make_interval(days=variant + 1),
        TIMESTAMP_FORMAT)
    sale_ts = F.when(dirty_as("unparseable") & (unparseable_col == 3), F.lit("31/02/2026 25:61")) \
        .when(dirty_as("future_date"), future_ts).otherwise(F.col("sale_ts"))

    return df.select(
        maybe_missing("sale_id", 0, F.col("sale_id")).alias("sale_id"),
        maybe_missing("order_id", 1, F.col("order_id")).alias("order_id"),
        F.col("customer_id"),
        maybe_missing("product", 2, F.col("product")).alias("product"),
        F.col("category"),
        maybe_missing("region", 3, F.col("region")).alias("region"),
        maybe_missing("quantity", 4, quantity).alias("quantity"),
        maybe_missing("unit_price", 5, unit_price).alias("unit_price"),
        amount.alias("amount"),
        maybe_missing("sale_ts", 6, sale_ts).alias("sale_ts"),
    )
