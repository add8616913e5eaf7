"""``pipeline_events``: every converging and actionable outcome, queryable beside the data."""

from __future__ import annotations

import hashlib
import io
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ssp_revenue import lake, schema
from ssp_revenue.catalog import GlueCatalog
from ssp_revenue.clock import Clock
from ssp_revenue.outcomes import Severity, StepOutcome

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
    for (ssp, day), items in sorted(by_partition.items()):
        rows = [
            {"revenue_date": o.revenue_date, "ssp": o.ssp, "step": o.step,
             "severity": o.severity.value, "reason": o.reason.value if o.reason else None,
             "detail": o.detail, "recorded_at": now}
            for o in items
        ]
        table = pa.Table.from_pylist(rows, schema=schema.PIPELINE_EVENTS)
        sink = io.BytesIO()
        pq.write_table(table, sink)
        body = sink.getvalue()
        prefix = lake.partition_prefix(TABLE, ssp, items[0].revenue_date)
        digest = hashlib.sha256(body).hexdigest()[:12]
        lake.put_once(s3, catalog.bucket, f"{prefix}{lake.stamp(now)}-{digest}.parquet", body)
        if catalog.get_partition(TABLE, day, ssp) is None:
            catalog.set_partition(TABLE, day, ssp, lake.s3_uri(catalog.bucket, prefix))
        written += len(rows)
    return written
