"""``pipeline_events``: every converging and actionable outcome, queryable beside the data."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from ssp_revenue.core import schema
from ssp_revenue.core.clock import Clock
from ssp_revenue.lake import logs
from ssp_revenue.lake.catalog import GlueCatalog
from ssp_revenue.operate.outcomes import Severity, StepOutcome

TABLE = "pipeline_events"


def record(outcomes: list[StepOutcome], *, s3: Any, catalog: GlueCatalog, clock: Clock,
           include_ok: bool = False) -> int:
    """Write the outcomes (one small file per SSP-date) and register their partitions."""
    now = clock.now()
    written = 0
    by_partition: dict[tuple[str, str], list[StepOutcome]] = {}
    for outcome in outcomes:
        if outcome.severity is Severity.OK and not include_ok:
            continue
        by_partition.setdefault((outcome.ssp, outcome.revenue_date.isoformat()), []).append(outcome)
    for (ssp, _day), items in sorted(by_partition.items()):
        rows = [
            {"revenue_date": o.revenue_date, "ssp": o.ssp, "step": o.step,
             "severity": o.severity.value, "reason": o.reason.value if o.reason else None,
             "detail": o.detail, "recorded_at": now}
            for o in items
        ]
        table = pa.Table.from_pylist(rows, schema=schema.PIPELINE_EVENTS)
        logs.append(s3, catalog, TABLE, ssp, items[0].revenue_date, table, at=now)
        written += len(rows)
    return written
