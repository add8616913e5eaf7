"""The same figures in another row order: one version, whoever writes its file.

Version files are written in the report's row order, so two publishes of the same
figures can put different bytes under the same version key. Both are complete
copies of the version (same content hash, rows and date in the footer): a rerun
finds the version live and changes nothing, and a racing writer's copy landing
between our put and our read-back is accepted, not reported as a failed write.
A copy of other figures under the key is still refused.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from ssp_revenue.core.clock import FixedClock
from ssp_revenue.core.errors import StorageError
from ssp_revenue.ingest.content import content_hash, encode
from ssp_revenue.ingest.normalise import with_lineage
from ssp_revenue.lake import store
from ssp_revenue.lake.publish import PART, TABLE, parquet_bytes, publish_batch
from ssp_revenue.lake.store import read_footer
from ssp_revenue.operate import runtime
from tests.unit.helpers import DAY, rows, table

pytestmark = pytest.mark.integration


def _services(lake_settings: Any) -> Any:
    services = runtime.services_for(lake_settings, clock=FixedClock(dt.datetime(2026, 11, 6, tzinfo=dt.UTC)))
    runtime.bootstrap(services)
    return services


def _publish(services: Any, content: Any, day: dt.date = DAY) -> Any:
    return publish_batch(content, ssp="adpulse", revenue_date=day, fetched_at=services.clock.now(),
                         raw_object="raw/x", expected_version=None, s3=services.s3,
                         catalog=services.catalog, clock=services.clock)


def _copy_lands_after_ours(services: Any, content: Any) -> dict[str, int]:
    """After our put of a version file, another writer's copy of ``content`` replaces it."""
    digest = content_hash(content)
    body = parquet_bytes(with_lineage(encode(content), source_version=digest[:20],
                                      fetched_at=services.clock.now(), raw_object="s3://other/raw"),
                         digest)
    landed = {"copies": 0}
    put: dict[str, str] = {}

    def remember(params: Any, **_: Any) -> None:
        put.update(Bucket=params.get("Bucket", ""), Key=params.get("Key", ""))

    def racer(**_: Any) -> None:
        key = put.get("Key", "")
        if key.startswith(f"tables/{TABLE}/") and key.endswith(PART) and not landed["copies"]:
            landed["copies"] += 1
            services.s3.put_object(Bucket=put["Bucket"], Key=key, Body=body)

    services.s3.meta.events.register("before-parameter-build.s3.PutObject", remember)
    services.s3.meta.events.register("after-call.s3.PutObject", racer)
    return landed


def test_another_row_order_is_the_same_version(lake_settings: Any) -> None:
    services = _services(lake_settings)
    data = rows(6, row2={"media": "games"})
    first = _publish(services, table(data))
    again = _publish(services, table(list(reversed(data))))
    assert first.outcome == "published"
    assert (again.version, again.outcome) == (first.version, "unchanged")


def test_a_racing_copy_of_the_same_figures_is_accepted(lake_settings: Any) -> None:
    services = _services(lake_settings)
    data = rows(6, row2={"media": "games"})
    landed = _copy_lands_after_ours(services, table(list(reversed(data))))
    result = _publish(services, table(data))
    assert landed["copies"] == 1 and result.outcome == "published"
    key = store.version_prefix(TABLE, "adpulse", DAY, result.version) + PART
    footer = read_footer(services.s3, services.catalog.bucket, key)
    assert footer is not None and footer.num_rows == 6
    live = services.catalog.get_partition(TABLE, DAY.isoformat(), "adpulse")
    assert live is not None and live.parameters["source_version"] == result.version


def test_a_copy_of_other_figures_under_the_key_is_refused(lake_settings: Any) -> None:
    services = _services(lake_settings)
    data = rows(6)
    other = rows(6, row1={"revenue": data[1]["revenue"] + Decimal("0.000001")})
    _copy_lands_after_ours(services, table(other))
    with pytest.raises(StorageError, match="read-back"):
        _publish(services, table(data))
    assert services.catalog.get_partition(TABLE, DAY.isoformat(), "adpulse") is None
