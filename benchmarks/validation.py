"""Validation alone on one SSP-day: the great-expectations suite against the same checks
written directly in pyarrow compute."""

from __future__ import annotations

import datetime as dt
import time

import pyarrow as pa
import pyarrow.compute as pc

from benchmarks.common import median, write_table
from benchmarks.session import Session
from ssp_revenue.core import schema
from ssp_revenue.core.registry import SspConfig
from ssp_revenue.ingest.normalise import totals_of
from ssp_revenue.ingest.validate import ISO_CURRENCIES, validate


def direct_checks(table: pa.Table, config: SspConfig, revenue_date: dt.date) -> list[str]:
    """Every rule of the suite, in pyarrow compute; returns the failing ones."""
    failed = [f"{name} has nulls" for name in table.column_names if table[name].null_count]
    keys = table.group_by(list(schema.GRAIN)).aggregate([([], "count_all")])
    if keys.num_rows != table.num_rows:
        failed.append("grain not unique")
    for name in ("impressions", "clicks"):
        if pc.any(pc.less(table[name], 0)).as_py():
            failed.append(f"{name} negative")
    if pc.any(pc.less(table["revenue"], pa.scalar(0, table["revenue"].type))).as_py():
        failed.append("revenue negative")
    if pc.any(pc.less(table["impressions"], table["clicks"])).as_py():
        failed.append("clicks > impressions")
    currencies = set(table["currency"].unique().to_pylist())
    if not currencies <= ISO_CURRENCIES or currencies != {config.currency}:
        failed.append("currency")
    for name, value in (("revenue_date", revenue_date), ("ssp", config.name),
                        ("tz_policy", config.tz_policy)):
        if table[name].unique().to_pylist() != [value]:
            failed.append(name)
    if not pc.all(pc.match_substring_regex(table["country"], r"^[A-Z]{2}$")).as_py():
        failed.append("country")
    return failed


def main(session: Session, runs: int) -> str:
    day = dt.date(2026, 9, 1)
    parsed = session.fetch_parsed(day)
    timings: dict[str, list[float]] = {"great-expectations suite + exact totals": [],
                                       "pyarrow compute, same checks + exact totals": []}
    for _ in range(runs):
        started = time.perf_counter()
        validate(parsed, config=session.config, revenue_date=day, file="bench")
        timings["great-expectations suite + exact totals"].append(time.perf_counter() - started)
        started = time.perf_counter()
        assert direct_checks(parsed.table, session.config, day) == []
        totals_of(parsed.table)
        timings["pyarrow compute, same checks + exact totals"].append(time.perf_counter() - started)
    gx, direct = (median(v) for v in timings.values())
    rows = [[name, f"{median(v):.2f}", f"{min(v):.2f}", f"{max(v):.2f}"] for name, v in timings.items()]
    rows.append(["ratio GX / pyarrow", f"{gx / direct:.1f}x", "", ""])
    return write_table(
        "validation", f"Validation alone, {parsed.table.num_rows:,} rows (median of {runs})",
        ["checks", "median s", "min s", "max s"], rows,
        "Target: the GX suite within 3x of the same checks in pyarrow compute.",
    )
