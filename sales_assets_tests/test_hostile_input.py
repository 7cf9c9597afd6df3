"""Hostile and malformed files via source_path: each becomes clean rows, counted rejections with
the right reason, or a clear error before any table is touched."""

from __future__ import annotations

import pytest

from sales_assets.contract import RAW_COLUMNS
from sales_assets.resources.run_date import RUN_DATE_TAG
from sales_assets_tests.helpers import query

pytestmark = pytest.mark.integration
TAGS = {RUN_DATE_TAG: "2026-10-01"}
HEADER = ",".join(RAW_COLUMNS)


def test_hostile_lines_are_kept_or_rejected_with_the_right_reason(run_job, pg, tmp_path):
    lines = {
        # sale_id: (csv line, expected reason or None when kept)
        "1": ('1,10,7,"\'; DROP TABLE sales.cleaned_sales; --",Tools,Kazan,1,2.00,2.00,2026-09-01 10:00:00', None),
        "2": ("2,11,7,Rocket 🚀,Toys,Ünïcode City,1,3.00,3.00,2026-09-01 10:00:00", None),
        "3": (f"3,12,7,{'x' * 10_000},Tools,Kazan,1,4.00,4.00,2026-09-01 10:00:00", None),
        "4": ('4,13,7,Widget,Tools,Kazan,1,"1,234.50",1234.50,2026-09-01 10:00:00', "unparseable"),
        "5": ('5,14,7,Widget,Tools,Kazan,1,"12,50",12.50,2026-09-01 10:00:00', "unparseable"),
        "6": ("6,15,7,Widget,Tools,Kazan,NaN,2.00,2.00,2026-09-01 10:00:00", "unparseable"),
        "7": ("7,16,7,Widget,Tools,Kazan,1,Infinity,2.00,2026-09-01 10:00:00", "unparseable"),
        "8": ("8,17,7,Widget,Tools,Kazan,1,2.00,2.00,01/09/2026 10:00", "unparseable"),
        "9": ("9,18,7,Widget,Tools,Kazan,1,2.00,2.00,2026-09-01T10:00:00", None),
        "10": ("10,19,7,Widget,Tools,Kazan,1,2.00,2.00,2026-12-01 10:00:00", "future_date"),
        # PostgreSQL text cannot hold NUL: the name cannot be stored, the raw text is stored with U+FFFD
        "11": ("11,20,7,Wid\x00get,Tools,Kazan,1,2.00,2.00,2026-09-01 10:00:00", "unparseable"),
        "12": ("12,21,7,Widget,Tools,Kazan,1,2.00\x00x,2.00,2026-09-01 10:00:00", "unparseable"),
    }
    path = tmp_path / "hostile.csv"
    path.write_text(HEADER + "\n" + "\n".join(v[0] for v in lines.values()) + "\n", encoding="utf-8")
    assert run_job(tags=TAGS, source_path=str(path)).success
    kept = {str(r[0]) for r in query(pg, "select sale_id from sales.cleaned_sales")}
    rejected = dict(query(pg, "select sale_id, reason from sales.rejected_sales"))
    assert kept == {k for k, v in lines.items() if v[1] is None}
    assert rejected == {k: v[1] for k, v in lines.items() if v[1] is not None}
    assert query(pg, "select product from sales.cleaned_sales where sale_id = 1") == [
        ("'; Drop Table Sales.cleaned_sales; --",)
    ]  # stored as text, the table is still there
    assert query(pg, "select region from sales.cleaned_sales where sale_id = 2") == [("Ünïcode City",)]
    assert query(
        pg, "select product, unit_price from sales.rejected_sales where sale_id in ('11', '12') order by sale_id"
    ) == [("Wid\ufffdget", "2.00"), ("Widget", "2.00\ufffdx")]
