"""Deterministic revenue for any (ssp, date, seed), restated as simulated time passes.

Figures are a pure function of (ssp, date, seed, rows, instant): the same
inputs give the same rows on every machine, so tests reconcile to the last
decimal against ``/_control/truth``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pyarrow.compute

MEDIA = ("news", "sports", "lifestyle", "finance", "tech", "travel", "food", "games")
COUNTRIES = (
    "JP", "US", "KR", "TW", "HK", "SG", "TH", "VN", "ID", "PH",
    "MY", "AU", "GB", "DE", "FR", "CA", "IN", "BR", "MX", "IT",
)
DEVICES = ("desktop", "mobile", "tablet", "ctv")


@dataclasses.dataclass(frozen=True)
class SspProfile:
    """How one emulated SSP behaves: its API style, zone, currency and restatements."""

    name: str
    style: str
    timezone: str
    currency: str
    rows: int = 200
    # Hours after the end of the date (in the report zone) when data is first served.
    available_after_hours: float = 3.0
    # Hours after the end of the date at which figures are restated.
    restatement_hours: tuple[float, ...] = (6.0, 20.0, 40.0)
    # How many status polls an async report job takes to finish.
    job_polls: int = 2
    # Download part size for chunked downloads (bytes).
    part_size: int = 64 * 1024
    client_id: str = ""
    client_secret: str = ""
    # Reports by hour (rows carry their UTC hour) rather than by day.
    hourly: bool = False
    # How /_control/truth maps business dates: "hourly" re-buckets, "ssp_date" takes the SSP's day.
    rate_limit_per_window: int = 0  # 0: no limit
    # Smallest money unit the SSP reports, in micros (1_000_000: whole yen).
    money_unit_micros: int = 1
    rate_window_seconds: float = 60.0

    def date_end(self, revenue_date: dt.date) -> dt.datetime:
        tz = ZoneInfo(self.timezone)
        end = dt.datetime.combine(revenue_date + dt.timedelta(days=1), dt.time(0), tzinfo=tz)
        return end.astimezone(dt.UTC)

    def available_at(self, revenue_date: dt.date) -> dt.datetime:
        return self.date_end(revenue_date) + dt.timedelta(hours=self.available_after_hours)

    def restatements_applied(self, revenue_date: dt.date, at: dt.datetime) -> int:
        hours = (at - self.date_end(revenue_date)).total_seconds() / 3600
        return sum(1 for h in self.restatement_hours if hours >= h)


# Roughly include/config/fx_rates.csv's sample rates: what one unit of each currency is in yen.
YEN_PER_UNIT = {"JPY": 1, "USD": 150, "EUR": 160}

DEFAULT_PROFILES: dict[str, SspProfile] = {
    "adpulse": SspProfile(
        name="adpulse",
        style="async_job",
        timezone="Asia/Tokyo",
        currency="JPY",
        client_id="adpulse-client",
        client_secret="adpulse-secret",  # noqa: S106  # nosec B106 - the emulator's own demo credential
    ),
    "xchange": SspProfile(
        name="xchange",
        style="rest_json",
        timezone="UTC",
        currency="USD",
        hourly=True,
        available_after_hours=1.0,
        restatement_hours=(2.0, 10.0, 30.0),  # late events attributed back to earlier hours
        client_id="xchange-key",
        client_secret="xchange-secret",  # noqa: S106  # nosec B106
        rate_limit_per_window=600,
    ),
    "nihon": SspProfile(
        name="nihon",
        style="jp_csv",
        timezone="Asia/Tokyo",
        currency="JPY",
        money_unit_micros=1_000_000,  # whole yen, tax included
        available_after_hours=8.0,
        restatement_hours=(30.0,),
        client_id="nihon-account",
        client_secret="nihon-token",  # noqa: S106  # nosec B106
    ),
    "gamnet": SspProfile(
        name="gamnet",
        style="service_account_job",
        timezone="America/Los_Angeles",  # the network's zone, with daylight saving
        currency="USD",
        hourly=True,
        available_after_hours=2.0,
        restatement_hours=(6.0, 24.0, 44.0),
        client_id="reports@gamnet-demo.iam.example",
        job_polls=2,
    ),
    "dropzone": SspProfile(
        name="dropzone",
        style="file_drop",
        timezone="UTC",
        currency="EUR",
        available_after_hours=6.0,
        restatement_hours=(12.0, 36.0),
        client_id="testing",  # the drop bucket's access key (moto accepts any)
        client_secret="testing",  # noqa: S106  # nosec B106
    ),
}


def _rng(*parts: object) -> np.random.Generator:
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


class StageCache:
    """Figures by (profile, date, seed, restatement stage), least recently used out.

    Figures change only when a restatement applies, so every fetch, poll and page
    between two restatements reads the same immutable table; the budget bounds the
    rows held, not the entries.
    """

    def __init__(self, max_rows: int = 6_000_000) -> None:
        self.max_rows = max_rows
        self._tables: OrderedDict[tuple[object, ...], pa.Table] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[object, ...], make: Callable[[], pa.Table]) -> pa.Table:
        with self._lock:
            if key in self._tables:
                self._tables.move_to_end(key)
                return self._tables[key]
        table = make()
        with self._lock:
            self._tables[key] = table
            while len(self._tables) > 1 and sum(t.num_rows for t in self._tables.values()) > self.max_rows:
                self._tables.popitem(last=False)
        return table


STAGES = StageCache()


def figures(
    profile: SspProfile, revenue_date: dt.date, seed: int, at: dt.datetime
) -> pa.Table:
    """The rows the SSP serves for ``revenue_date`` at instant ``at``.

    Columns are the emulator's own: dimensions, impressions, clicks and
    revenue in micros of the SSP's currency (int64, exact).
    """
    stage = profile.restatements_applied(revenue_date, at)
    return STAGES.get(("daily", profile, revenue_date, seed, stage),
                      lambda: _figures(profile, revenue_date, seed, stage))


def _figures(profile: SspProfile, revenue_date: dt.date, seed: int, stage: int) -> pa.Table:
    n = profile.rows
    i = np.arange(n, dtype=np.int64)
    device = i % len(DEVICES)
    country = (i // len(DEVICES)) % len(COUNTRIES)
    media = (i // (len(DEVICES) * len(COUNTRIES))) % len(MEDIA)

    rng = _rng(profile.name, revenue_date.isoformat(), seed, "base")
    impressions = rng.integers(100, 50_000, n, dtype=np.int64)
    ctr = rng.uniform(0.0005, 0.02, n)
    clicks = np.floor(impressions * ctr).astype(np.int64)
    # 20..900 yen per mille, in the SSP's own currency at about the demo's FX rates, so a USD
    # SSP's figures are ~1/150 of a yen one's in number and every SSP shows in the report's charts.
    yen_per_unit = YEN_PER_UNIT.get(profile.currency, 150)  # another currency: about a dollar's
    cpm_micros = rng.integers(20_000_000, 900_000_000, n, dtype=np.int64) // yen_per_unit
    revenue_micros = (impressions * cpm_micros) // 1000

    for k in range(stage):
        step = _rng(profile.name, revenue_date.isoformat(), seed, "restate", k)
        # Invalid-traffic deductions on some rows, late events on a few others.
        deduct = step.random(n) < 0.2
        late = step.random(n) < 0.05
        cut = np.floor(revenue_micros * step.uniform(0.01, 0.08, n)).astype(np.int64)
        add = np.floor(revenue_micros * step.uniform(0.0, 0.03, n)).astype(np.int64)
        revenue_micros = revenue_micros - np.where(deduct, cut, 0) + np.where(late, add, 0)
        imp_cut = np.floor(impressions * 0.02).astype(np.int64)
        impressions = impressions - np.where(deduct, imp_cut, 0)
        clicks = np.minimum(clicks, impressions)

    if profile.money_unit_micros > 1:
        revenue_micros = (revenue_micros // profile.money_unit_micros) * profile.money_unit_micros
    # Strings by index into their few distinct values: no per-row Python string work.
    combo = i // len(DEVICES) // len(COUNTRIES)  # = unit * len(MEDIA) + media
    units = pa.array([f"{MEDIA[k % len(MEDIA)]}_unit{k // len(MEDIA):05d}"
                      for k in range(int(combo[-1]) + 1 if n else 0)], pa.string())
    return pa.table(
        {
            "date": pa.repeat(revenue_date.isoformat(), n).cast(pa.string()),
            "site": pa.array(MEDIA, pa.string()).take(pa.array(media)),
            "ad_unit_code": units.take(pa.array(combo)),
            "country_code": pa.array(COUNTRIES, pa.string()).take(pa.array(country)),
            "device_category": pa.array(DEVICES, pa.string()).take(pa.array(device)),
            "impressions": pa.array(impressions, pa.int64()),
            "clicks": pa.array(clicks, pa.int64()),
            "revenue_micros": pa.array(revenue_micros, pa.int64()),
            "currency": pa.repeat(profile.currency, n).cast(pa.string()),
        }
    )


def local_hours(profile: SspProfile, local_date: dt.date) -> list[dt.datetime]:
    """UTC starts of the hours of a local date: 23 or 25 of them on daylight-saving days."""
    tz = ZoneInfo(profile.timezone)
    start = dt.datetime.combine(local_date, dt.time(0), tzinfo=tz).astimezone(dt.UTC)
    end = dt.datetime.combine(local_date + dt.timedelta(days=1), dt.time(0), tzinfo=tz).astimezone(dt.UTC)
    return [start + dt.timedelta(hours=h) for h in range(int((end - start).total_seconds() // 3600))]


def hourly_figures(
    profile: SspProfile, local_date: dt.date, seed: int, at: dt.datetime
) -> pa.Table:
    """A local date's rows split over its hours, exactly: the hours of a row add up to its day."""
    stage = profile.restatements_applied(local_date, at)
    return STAGES.get(("hourly", profile, local_date, seed, stage),
                      lambda: _hourly_figures(profile, local_date, seed, at))


def _hourly_figures(profile: SspProfile, local_date: dt.date, seed: int, at: dt.datetime) -> pa.Table:
    daily = figures(profile, local_date, seed, at)
    hours = local_hours(profile, local_date)
    n, h = daily.num_rows, len(hours)
    rng = _rng(profile.name, local_date.isoformat(), seed, "hours")
    shape = np.sin(np.linspace(0.3, 3.0, h)) + 0.2  # a daily curve, plus noise per row
    weights = shape[None, :] * rng.uniform(0.5, 1.5, (n, h))
    weights /= weights.sum(axis=1, keepdims=True)
    parts = {}
    for column in ("impressions", "clicks", "revenue_micros"):
        total = daily[column].to_numpy()
        split = np.floor(total[:, None] * weights).astype(np.int64)
        split[:, -1] += total - split.sum(axis=1)  # remainders to the last hour: exact sums
        parts[column] = split.reshape(-1)
    parts["clicks"] = np.minimum(parts["clicks"], parts["impressions"])
    index = np.repeat(np.arange(n), h)
    out = daily.take(pa.array(index)).drop_columns(["impressions", "clicks", "revenue_micros"])
    naive = np.array([h.replace(tzinfo=None) for h in hours], dtype="datetime64[us]")
    starts = pa.array(np.tile(naive, n), pa.timestamp("us", tz="UTC"))
    out = out.append_column("hour_start", starts)
    for column in ("impressions", "clicks", "revenue_micros"):
        out = out.append_column(column, pa.array(parts[column], pa.int64()))
    return out


def hourly_between(
    profile: SspProfile, start: dt.datetime, end: dt.datetime, seed: int, at: dt.datetime
) -> pa.Table:
    """Hourly rows with start <= hour_start < end (UTC), across the local dates they touch.

    Kept by the stages of those dates: a paged report asks for the same range once a page.
    """
    tz = ZoneInfo(profile.timezone)
    first = start.astimezone(tz).date()
    last = (end - dt.timedelta(seconds=1)).astimezone(tz).date()
    days = [first + dt.timedelta(days=k) for k in range((last - first).days + 1)]
    stages = tuple(profile.restatements_applied(day, at) for day in days)
    return STAGES.get(("between", profile, start, end, seed, stages),
                      lambda: _hourly_between(profile, days or [first], start, end, seed, at))


def _hourly_between(profile: SspProfile, days: list[dt.date], start: dt.datetime, end: dt.datetime,
                    seed: int, at: dt.datetime) -> pa.Table:
    table = pa.concat_tables([hourly_figures(profile, day, seed, at) for day in days])
    hour = table["hour_start"]
    keep = pa.compute.and_(
        pa.compute.greater_equal(hour, pa.scalar(start, pa.timestamp("us", tz="UTC"))),
        pa.compute.less(hour, pa.scalar(end, pa.timestamp("us", tz="UTC"))),
    )
    return table.filter(keep)


def business_figures(
    profile: SspProfile, revenue_date: dt.date, seed: int, at: dt.datetime, business_tz: str = "Asia/Tokyo"
) -> pa.Table:
    """The rows that belong to a business date: re-bucketed hours, or the SSP's own day."""
    if not profile.hourly:
        return figures(profile, revenue_date, seed, at)
    tz = ZoneInfo(business_tz)
    start = dt.datetime.combine(revenue_date, dt.time(0), tzinfo=tz).astimezone(dt.UTC)
    end = dt.datetime.combine(revenue_date + dt.timedelta(days=1), dt.time(0), tzinfo=tz).astimezone(dt.UTC)
    hours = hourly_between(profile, start, end, seed, at)
    dims = ["site", "ad_unit_code", "country_code", "device_category", "currency"]
    grouped = hours.group_by(dims).aggregate(
        [("impressions", "sum"), ("clicks", "sum"), ("revenue_micros", "sum")]
    )
    return grouped.rename_columns(
        [c.removesuffix("_sum") for c in grouped.column_names]
    ).sort_by([(d, "ascending") for d in dims])


class ByTable:
    """A few values derived from tables, kept by each table's identity (with the table, so
    its id is not reused): the figures are cached per restatement stage, so a table served
    again is the same object, and a fault's altered table is another. Bounded by ``size``."""

    def __init__(self, size: int = 16) -> None:
        self.size = size
        self._kept: dict[int, tuple[pa.Table, Any]] = {}
        self._lock = threading.Lock()

    def get(self, table: pa.Table, make: Callable[[pa.Table], Any]) -> Any:
        with self._lock:
            kept = self._kept.get(id(table))
            if kept is not None and kept[0] is table:
                return kept[1]
        value = make(table)
        with self._lock:
            while len(self._kept) >= self.size:
                self._kept.pop(next(iter(self._kept)))
            self._kept[id(table)] = (table, value)  # the reference keeps the id from being reused
        return value


_TOTALS = ByTable()


def totals(table: pa.Table) -> dict[str, int]:
    """Report-level totals, as the SSP states them beside the report (summed once per table:
    every page of a paged report states them)."""
    return dict(_TOTALS.get(table, _totals))


def _totals(table: pa.Table) -> dict[str, int]:
    return {
        "rows": table.num_rows,
        "impressions": int(pa.compute.sum(table["impressions"]).as_py() or 0),
        "clicks": int(pa.compute.sum(table["clicks"]).as_py() or 0),
        "revenue_micros": int(pa.compute.sum(table["revenue_micros"]).as_py() or 0),
    }
