"""Validation, its own phase: a batch that fails here publishes nothing.

Row rules run as a great-expectations suite (one batch, vectorised
expectations, a pass/fail pass before any detail is collected); the exact
money reconciliation against the SSP's own totals is done in Decimal with
pyarrow, since GX computes sums in floating point.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import functools
import logging
import os
import threading
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ssp_revenue.core import schema
from ssp_revenue.core.errors import Reason, ValidationFailed
from ssp_revenue.core.registry import SspConfig
from ssp_revenue.ingest.connectors.base import ParsedReport, ReportBatches
from ssp_revenue.ingest.content import ContentHasher
from ssp_revenue.ingest.normalise import Totals, totals_of

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
log = logging.getLogger(__name__)

# ISO 4217 active codes the SSPs we know of may report in (a wider list is harmless).
ISO_CURRENCIES = frozenset(
    "AED AUD BRL CAD CHF CNY CZK DKK EUR GBP HKD IDR ILS INR JPY KRW MXN MYR NOK NZD "
    "PHP PLN SAR SEK SGD THB TRY TWD USD VND ZAR".split()
)
MAX_EXAMPLES = 5


@dataclasses.dataclass(frozen=True)
class ValidationReport:
    totals: Totals
    checks: int
    digest: str  # the content hash of the rows validated (content.ContentHasher)


def _gx() -> Any:
    """great-expectations, imported quietly: its import logs ~200 INFO lines
    ("Skipping registering function ...") that bury a task's own log."""
    logging.getLogger("great_expectations._docs_decorators").setLevel(logging.WARNING)
    import great_expectations as gx

    return gx


def preload() -> bool:
    """Pay GX's import (~6 s), its context, the suite and a first validation once, in a
    process that forks task processes (the Celery worker), instead of once per task: GX
    fills caches on a process's first validation (a forked task's first 2,000-row batch
    took 0.2 s without this, 0.13 s with it)."""
    _batch_definition()
    sample = pa.table({
        "revenue_date": pa.array([dt.date(2000, 1, 1)], pa.date32()), "ssp": ["sample"],
        "media": ["m"], "ad_unit": ["u"], "country": ["JP"], "device": ["d"],
        "impressions": [1], "clicks": [0], "revenue": pa.array([decimal.Decimal(0)], schema.MONEY),
        "currency": ["JPY"], "tz_policy": ["business_zone"],
    }, schema=schema.NORMALISED)
    return _suite_passes(_frame(sample))  # True: the path a good batch takes


# One GX context per process, shared by every validation in it; GX's ephemeral context and
# its batch registry are not thread-safe, and the replay validates several SSPs' jobs on
# threads. GX's share is pure Python under the GIL, so the lock costs no parallelism.
_GX_LOCK = threading.RLock()


@functools.lru_cache(maxsize=1)
def _batch_definition() -> Any:
    gx = _gx()
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    source = context.data_sources.add_pandas("ssp_revenue")
    asset = source.add_dataframe_asset("normalised_batch")
    return asset.add_batch_definition_whole_dataframe("whole_batch")


# The columns each batch holds one known value in: its SSP's, its date's, its currency and its
# zone policy. Checked in Arrow (_expected_failures), not as GX expectations.
EXPECTED = ("currency", "revenue_date", "ssp", "tz_policy")


def expectation_suite() -> Any:
    """The row rules of every batch, one suite for every SSP and date."""
    with _GX_LOCK:
        return _suite()


@functools.lru_cache(maxsize=1)
def _suite() -> Any:
    """Built once per process (the Celery worker builds it before forking its tasks): adding
    its expectations costs ~0.1 s, more than validating a 50,000-row batch with it. It holds
    no value that differs by SSP or date (those are checked by _expected_failures), so a
    task that validates several dates builds it no more (measured: a new date's first
    validation 0.19 s with a suite per date, 0.07 s with one)."""
    gx = _gx()

    e: Any = gx.expectations
    suite = gx.ExpectationSuite(name="revenue")
    suite.add_expectation(e.ExpectCompoundColumnsToBeUnique(column_list=list(schema.GRAIN)))
    for name in ("impressions", "clicks", "revenue"):
        suite.add_expectation(e.ExpectColumnValuesToBeBetween(column=name, min_value=0))
    suite.add_expectation(
        e.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="impressions", column_B="clicks", or_equal=True
        )
    )
    suite.add_expectation(
        e.ExpectColumnValuesToBeInSet(column="currency", value_set=sorted(ISO_CURRENCIES))
    )
    suite.add_expectation(e.ExpectColumnValuesToMatchRegex(column="country", regex=r"^[A-Z]{2}$"))
    return suite


def _frame(table: pa.Table) -> Any:
    """The batch as GX sees it: dates as ISO text, money as float (used for signs only).

    Text columns become pandas categoricals: the report's dimensions repeat a
    few values a million times, and on categoricals GX's per-expectation row
    filtering, set and regex checks and the batch's hashing work on small codes
    (benchmarks/results/validation.md).
    """
    columns = {name: table[name] for name in table.column_names}
    columns["revenue_date"] = table["revenue_date"].cast(pa.string())  # ISO 8601
    columns["revenue"] = table["revenue"].cast(pa.float64())
    return pa.table(columns).to_pandas(strings_to_categorical=True)


def validate(
    parsed: ParsedReport, *, config: SspConfig, revenue_date: dt.date, file: str
) -> ValidationReport:
    """Run every rule on a report in memory (see :func:`validate_batches`)."""
    return validate_batches(ReportBatches.of(parsed), config=config, revenue_date=revenue_date, file=file,
                            again=lambda: ReportBatches.of(parsed))


def validate_batches(
    report: ReportBatches, *, config: SspConfig, revenue_date: dt.date, file: str,
    again: Callable[[], ReportBatches],
) -> ValidationReport:
    """Run every rule, one record batch at a time; raise ``ValidationFailed`` listing
    each failure with example rows (numbered across batches).

    The row rules run on each batch; the exact totals add up across them, and the
    grain's uniqueness across batches is checked on 64-bit grain keys, each
    candidate duplicate confirmed on its values in a second pass (``again`` reads
    the report once more), so a key collision rejects nothing.
    """
    where: dict[str, Any] = {"ssp": config.name, "revenue_date": revenue_date, "file": file}
    hasher = ContentHasher()
    keys = _Keys(int((report.stated_totals or {}).get("rows", 0)))
    batches = 0
    sums = Totals.zero()
    failures: list[tuple[str, int | None]] = []
    foreign = False
    for batch in report.batches:
        if not batch.schema.equals(schema.NORMALISED):
            raise ValidationFailed(
                f"schema {batch.schema} is not the canonical {schema.NORMALISED}", **where
            )
        if batch.num_rows == 0:
            continue
        table = pa.Table.from_batches([batch])
        if not failures:  # the first failing batch's examples are enough to reject the report
            failures = _row_failures(table, config, revenue_date, before=sums.rows)
        foreign = foreign or bool(pc.any(pc.not_equal(table["currency"], config.currency)).as_py())
        if not failures:  # a rejected report has no digest (and the hash refuses nulls)
            keys.add(hasher.update(table))
        batches += 1
        sums = sums + totals_of(table)
    if sums.rows == 0:
        raise ValidationFailed("report has no rows", failures=["empty report"], **where)
    if batches > 1 and not failures:
        failures = _duplicates_across_batches(keys.sorted(), again)
    failures += _totals_failures(sums, report.stated_totals)
    if failures:
        first_row = next((f[1] for f in failures if f[1] is not None), None)
        # Another currency than the SSP's is its own reason: it is about the SSP's
        # account settings, not this one batch (see outcomes.classify, incidents).
        raise ValidationFailed(
            f"{len(failures)} check(s) failed: " + "; ".join(f[0] for f in failures),
            failures=[f[0] for f in failures],
            row=first_row,
            reason=Reason.WRONG_CURRENCY if foreign else None,
            **where,
        )
    # The not-null rule of each column, the expected values, the suite's expectations, the exact totals.
    checks = len(schema.NORMALISED.names) + len(EXPECTED) + len(expectation_suite().expectations) + 1
    return ValidationReport(totals=sums, checks=checks, digest=hasher.hexdigest())


class _Keys:
    """Every row's grain key, in one array: sized by the report's stated row count when
    it has one (8 bytes a row, sorted in place), grown by half when it has not."""

    def __init__(self, expected: int) -> None:
        self._keys = np.empty(max(expected, 1024), dtype=np.uint64)
        self._count = 0

    def add(self, keys: np.ndarray) -> None:
        end = self._count + len(keys)
        if end > len(self._keys):
            grown = np.empty(max(end, len(self._keys) * 3 // 2), dtype=np.uint64)
            grown[:self._count] = self._keys[:self._count]
            self._keys = grown
        self._keys[self._count:end] = keys
        self._count = end

    def sorted(self) -> np.ndarray:
        keys = self._keys[:self._count]
        keys.sort()
        return keys


def _duplicates_across_batches(
    ordered: np.ndarray, again: Callable[[], ReportBatches]
) -> list[tuple[str, int | None]]:
    """Grain keys seen twice, confirmed on the grain values themselves (second pass)."""
    repeated = np.unique(ordered[1:][ordered[1:] == ordered[:-1]])
    if not len(repeated):
        return []
    rows_of: dict[tuple[Any, ...], list[int]] = {}
    before = 0
    hasher = ContentHasher()
    for batch in again().batches:
        hits = np.flatnonzero(np.isin(hasher.update(batch), repeated))
        if len(hits):
            grain = batch.select(list(schema.GRAIN)).take(pa.array(hits)).to_pylist()
            for index, values in zip(hits, grain, strict=True):
                rows_of.setdefault(tuple(values.values()), []).append(before + int(index) + 1)
        before += batch.num_rows
    duplicated = [(rows, values) for values, rows in rows_of.items() if len(rows) > 1]
    if not duplicated:
        return []  # 64-bit keys that collided: no two rows share a grain
    rows = sorted(r for group, _ in duplicated for r in group)
    examples = [dict(zip(schema.GRAIN, values, strict=True)) for _, values in duplicated[:MAX_EXAMPLES]]
    message = (f"expect_compound_columns_to_be_unique on {list(schema.GRAIN)} across batches: "
               f"{len(rows)} row(s), rows {rows[:MAX_EXAMPLES]}, values {examples}")
    return [(message, rows[0])]


def _null_failures(table: pa.Table, *, before: int = 0) -> list[tuple[str, int | None]]:
    """No column may be null, checked on the null count Arrow keeps with each column.

    As twelve GX expectations (one per column) this rule was a quarter of a 200-row
    batch's validation (93 -> 69 ms), all of it GX building their metric graphs in
    Python; a replay or a backfill validates thousands of such batches. The message
    is the one GX gave.
    """
    out: list[tuple[str, int | None]] = []
    for name in table.column_names:
        column = table[name]
        if column.null_count:
            where = pc.indices_nonzero(pc.is_null(column))[:MAX_EXAMPLES].to_pylist()
            rows = [before + int(i) + 1 for i in where]
            out.append((f"expect_column_values_to_not_be_null on {name}: {column.null_count} row(s), "
                        f"rows {rows}, values {[None] * len(rows)}", rows[0]))
    return out


def _expected_failures(table: pa.Table, config: SspConfig, revenue_date: dt.date, *,
                       before: int = 0) -> list[tuple[str, int | None]]:
    """Each of the EXPECTED columns holds the batch's one value: its SSP's currency, its date,
    its SSP, its zone policy (a null is the not-null rule's to report).

    Checked in Arrow, like not-null: GX's fixed cost per batch is per expectation (it
    builds each one's metric graph in Python), and as four GX expectations these
    equalities were a third of it, a cost every batch of a backfill pays. The message is
    the one GX gave (expect_column_values_to_be_in_set, rows numbered from ``before + 1``).
    """
    values = {"currency": config.currency, "revenue_date": revenue_date.isoformat(),
              "ssp": config.name, "tz_policy": config.tz_policy}
    out: list[tuple[str, int | None]] = []
    for name in EXPECTED:
        column = table[name].cast(pa.string())  # revenue_date as ISO 8601, as GX saw it
        wrong = pc.fill_null(pc.not_equal(column, pa.scalar(values[name], pa.string())), False)
        count = int(pc.sum(wrong).as_py() or 0)
        if count:
            where = pc.indices_nonzero(wrong)[:MAX_EXAMPLES]
            rows = [before + int(i) + 1 for i in where.to_pylist()]
            examples = column.take(where).to_pylist()
            out.append((f"expect_column_values_to_be_in_set on {name}: {count} row(s), rows {rows}, "
                        f"values {examples}", rows[0]))
    return out


def _row_failures(
    table: pa.Table, config: SspConfig, revenue_date: dt.date, *, before: int = 0
) -> list[tuple[str, int | None]]:
    """The rules' failures on one batch; rows numbered from ``before + 1``."""
    out = _null_failures(table, before=before) + _expected_failures(table, config, revenue_date,
                                                                     before=before)
    frame = _frame(table)
    # Pass/fail first: collecting unexpected rows and examples costs as much again, and
    # is only worth it for a batch that fails.
    if _suite_passes(frame):
        return out
    with _GX_LOCK:
        batch = _batch_definition().get_batch(batch_parameters={"dataframe": frame})
        result = batch.validate(
            expectation_suite(),
            result_format={"result_format": "COMPLETE", "partial_unexpected_count": MAX_EXAMPLES},
        )
    for item in result.results:
        if item.success:
            continue
        kwargs = item.expectation_config.kwargs
        subject = kwargs.get("column") or kwargs.get("column_list") or (
            f"{kwargs.get('column_A')}>={kwargs.get('column_B')}"
        )
        details: Mapping[str, Any] = item.result or {}
        rows = [before + int(i) + 1 for i in (details.get("unexpected_index_list") or [])][:MAX_EXAMPLES]
        examples = (details.get("partial_unexpected_list") or [])[:MAX_EXAMPLES]
        count = details.get("unexpected_count")
        error = item.exception_info.get("exception_message") if item.exception_info else None
        message = f"{item.expectation_config.type} on {subject}: "
        message += error if error else f"{count} row(s), rows {rows}, values {examples}"
        out.append((message, rows[0] if rows else None))
    return out


def _suite_passes(frame: Any) -> bool:
    with _GX_LOCK:
        batch = _batch_definition().get_batch(batch_parameters={"dataframe": frame})
        result = batch.validate(expectation_suite(), result_format={"result_format": "BOOLEAN_ONLY"})
        return bool(result.success)


def _totals_failures(
    actual: Totals, stated: Mapping[str, Any] | None
) -> list[tuple[str, int | None]]:
    """Rows must add up to the report's own totals, exactly (a silent row cap shows here)."""
    if not stated:
        return []
    out: list[tuple[str, int | None]] = []
    got_by_name: dict[str, Any] = {
        "rows": actual.rows, "impressions": actual.impressions, "clicks": actual.clicks,
        "revenue": actual.revenue,
    }
    for name, got in got_by_name.items():
        if name not in stated:
            continue  # e.g. hourly reports state hourly row counts, checked when parsed
        want = decimal.Decimal(str(stated[name])) if name == "revenue" else int(stated[name])
        if got != want:
            out.append((f"total {name}: rows add up to {got}, report states {want}", None))
    return out
