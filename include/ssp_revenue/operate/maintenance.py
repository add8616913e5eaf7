"""The lake's upkeep, for the CLI and the maintenance DAG alike: compact the closed
dates of the append-only tables, then vacuum what no reader needs."""

from __future__ import annotations

import datetime as dt
from typing import Any

from ssp_revenue.core.settings import Settings
from ssp_revenue.lake import catalog as catalog_mod
from ssp_revenue.lake import logs
from ssp_revenue.lake.catalog import GlueCatalog
from ssp_revenue.operate import vacuum


def closed_before(settings: Settings, now: dt.datetime) -> dt.date:
    """The oldest date a scheduled run still appends to: dates before it are closed."""
    from ssp_revenue.core import calendar

    days = max(settings.refetch_days, settings.adjustment_days)
    return calendar.anchor_date(now, settings.tz) - dt.timedelta(days=days - 1)


def compact(s3: Any, catalog: GlueCatalog, settings: Settings, now: dt.datetime,
            *, everything: bool = False) -> list[logs.Compaction]:
    """Every closed date's partitions of the append-only tables, one file each
    (``everything``: open dates too; the append protocol keeps that safe)."""
    before = dt.date.max if everything else closed_before(settings, now)
    done: list[logs.Compaction] = []
    for table in logs.COMPACTABLE:
        done += logs.compact_table(s3, catalog, table, catalog_mod.TABLES[table], before=before, now=now)
    return done


def vacuum_lake(s3: Any, catalog: GlueCatalog, settings: Settings, now: dt.datetime, *,
                apply: bool, grace: dt.timedelta | None = None) -> vacuum.VacuumPlan:
    """Select (and with ``apply``, delete or tag) what has been superseded for longer than the grace."""
    chosen = vacuum.plan(s3, catalog, now=now, grace=grace or settings.reader_grace)
    if apply:
        vacuum.apply(s3, catalog.bucket, chosen.doomed, mode=settings.vacuum_mode)
    return chosen
