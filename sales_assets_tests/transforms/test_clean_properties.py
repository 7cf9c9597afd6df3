"""Property test over random raw frames: every line lands in exactly one table, every kept line
satisfies the contract, and cleaning is deterministic (order and partitioning do not matter).
A batch of 30 random frames is checked as one frame: one Spark job for all of them."""

from collections import Counter
from datetime import date, datetime, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from sales_assets.contract import RAW_COLUMNS, REJECT_REASONS
from sales_assets.transforms.clean import classify_sales, cleaned_lines, delivered_on, rejected_lines

RUN_DATE = date(2026, 11, 29)

ids = st.one_of(st.integers(-3, 40).map(str), st.sampled_from(["", " ", "x1", "1.5", None, "99999999999999999999"]))
names = st.one_of(
    st.sampled_from([" moscow ", "MOSCOW", "Kazan", "omsk\t", "", "  ", None, "Ünïcode 🚀", "'; drop table x; --"]),
    st.text(max_size=12),
)
numbers = st.one_of(
    st.integers(-5, 12).map(str),
    st.sampled_from(["1.999", "0.00", "-2.50", "12,50", "NaN", "Infinity", "1e3", "", None, "9999999999.99"]),
    st.decimals(min_value=Decimal("0.01"), max_value=Decimal("999.99"), places=2).map(str),
)
stamps = st.one_of(
    st.datetimes(min_value=datetime(2025, 11, 1), max_value=datetime(2026, 12, 31)).map(
        lambda d: d.strftime("%Y-%m-%d %H:%M:%S")
    ),
    st.sampled_from(
        [
            "2026-11-29 23:59:59",
            "2026-11-30 00:00:00",
            "31/02/2026",
            "2026-02-30 10:00:00",
            "",
            None,
            "2026-06-01T10:00:00",
            "2026-06-01",
        ]
    ),
)
line = st.tuples(ids, ids, ids, names, names, names, numbers, numbers, numbers, stamps)
SCHEMA = ", ".join(f"{c} string" for c in RAW_COLUMNS)
REQUIRED_AT = (0, 1, 3, 5, 6, 7, 9)  # sale_id, order_id, product, region, quantity, unit_price, sale_ts


BATCH = 30
frames = st.lists(st.lists(line, min_size=1, max_size=40), min_size=BATCH, max_size=BATCH)


@given(frames)
def test_cleaning_properties(spark, batch):
    lines = [line for frame in batch for line in frame]  # the properties hold for any frame, their union too
    raw = spark.createDataFrame(lines, SCHEMA)
    classified = classify_sales(delivered_on(raw, RUN_DATE)).cache()
    kept = cleaned_lines(classified).collect()
    rejected = rejected_lines(classified).collect()
    # each raw line once, in one table: counted by its raw sale_id text (kept ones by the id they parse to)
    assert Counter(r["sale_id"] for r in rejected) + Counter(str(r["sale_id"]) for r in kept) == Counter(
        line[0] for line in lines
    )
    # a line with a required field absent or empty is a missing_field rejection, whatever else it has
    missing = Counter(line[0] for line in lines if any(line[i] in (None, "") for i in REQUIRED_AT))
    assert missing <= Counter(r["sale_id"] for r in rejected if r["reason"] == "missing_field")
    assert {r["reason"] for r in rejected} <= set(REJECT_REASONS)
    end = datetime.combine(RUN_DATE + timedelta(days=1), datetime.min.time())
    assert len({r["sale_id"] for r in kept}) == len(kept)
    for r in kept:
        assert None not in (
            r["sale_id"],
            r["order_id"],
            r["product"],
            r["region"],
            r["quantity"],
            r["unit_price"],
            r["amount"],
            r["sale_ts"],
        )
        assert r["quantity"] > 0 and r["unit_price"] > 0
        assert abs(r["amount"] - r["quantity"] * r["unit_price"]) <= Decimal("0.01")
        assert r["sale_ts"] < end
        assert r["region"] == r["region"].strip() and r["region"] != ""
    again = classify_sales(delivered_on(spark.createDataFrame(list(reversed(lines)), SCHEMA).repartition(3), RUN_DATE))
    assert sorted(cleaned_lines(again).collect()) == sorted(kept)
    assert sorted(rejected_lines(again).collect(), key=repr) == sorted(rejected, key=repr)
    classified.unpersist()
