"""The bad-input corpus (tests/data/bad_reports): every variant is landed raw, rejected
with a clear error naming SSP, date, file and row, classified, quarantined, and
publishes nothing."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from ssp_revenue.core import registry
from ssp_revenue.ingest.connectors.base import ReportBody
from ssp_revenue.lake import store
from ssp_revenue.operate import pipeline

from .conftest import Lake, run_instant

pytestmark = pytest.mark.integration
CORPUS = Path(__file__).resolve().parents[1] / "data" / "bad_reports"
DAY = dt.date(2026, 11, 5)
STYLE_SSP = {"async_job": "adpulse", "jp_csv": "nihon", "rest_json": "xchange"}
GOOD_TOTALS = {"rows": 3, "impressions": 87024, "clicks": 878, "revenue_micros": 37695201582}
# The data row each variant must be blamed on, where one row is to blame.
ROW = {
    "negative_revenue": 2, "nan_revenue": 2, "infinity_revenue": 3, "scientific_notation": 2,
    "thousands_separators": 2, "overflow_beyond_decimal": 2, "duplicated_keys": 2,
    "rows_for_another_date": 2, "wrong_currency": 2, "not_a_currency_code": 3, "empty_cell": 2,
    "short_row": 2, "clicks_exceed_impressions": 3, "bad_date": 2, "lowercase_country": 2,
}
FILES = sorted(CORPUS.iterdir())


def test_the_corpus_has_at_least_25_variants() -> None:
    assert len(FILES) >= 25


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_bad_report_is_rejected_clearly_and_publishes_nothing(lake_env: Lake, emulator: Any, path: Path) -> None:
    style, rest = path.name.split("__", 1)
    variant = rest.split(".", 1)[0]
    ssp = STYLE_SSP[style]
    env = lake_env
    config = registry.find(env.registry, ssp)
    fetched_at = run_instant(DAY)
    emulator.set_clock(fetched_at)
    facts: dict[str, Any] = {"style": style}
    if style == "async_job":
        totals = dict(GOOD_TOTALS)
        if variant == "totals_do_not_add_up":
            totals["revenue_micros"] += 1
        facts["totals"] = totals
    body = path.read_bytes()
    key = store.land_raw(env.services.s3, env.settings.bucket, ssp=ssp, revenue_date=DAY,
                        body=ReportBody.of(body), extension=path.name.split(".", 1)[1],
                        facts=facts).key
    job = pipeline.new_job(ssp, [DAY])
    job["fetched"] = [{"revenue_date": DAY.isoformat(), "raw_object": key,
                       "fetched_at": fetched_at.isoformat()}]
    pipeline.validate_step(job, config, env.services)
    pipeline.publish_step(job, config, env.services)

    assert job["validated"] == [] and job["published"] == []
    [outcome] = job["outcomes"]
    assert outcome["severity"] in ("converging", "actionable")
    detail = outcome["detail"]
    assert f"ssp={ssp}" in detail and "revenue_date=2026-11-05" in detail and f"file={key}" in detail
    if variant in ROW:
        assert f"row={ROW[variant]}" in detail, detail
    # Quarantined with the reason; the raw body kept byte for byte; no partition.
    [record_key] = env.keys(f"quarantine/ssp={ssp}/")
    record = json.loads(env.services.s3.get_object(Bucket=env.settings.bucket, Key=record_key)["Body"].read())
    assert record["reason"] == outcome["reason"] and record["raw_object"].endswith(key)
    assert env.services.s3.get_object(Bucket=env.settings.bucket, Key=key)["Body"].read() == body
    assert env.services.catalog.get_partition("revenue", DAY.isoformat(), ssp) is None
