"""Vacuum: delete what no reader can need any more, and nothing else.

What goes: a ``revenue`` version prefix superseded for longer than the reader
grace period, and an append-only partition's old prefix (its appends, or an
older generation) once the live generation holds every row of it and was
compacted longer than the grace period ago.

What never goes, whatever its age: a version a Glue partition points to; a
version named by the ledger, by an adjustment batch or by a closed month's
manifest; revenue_final and allocation_final; anything under raw/, quarantine/,
ledger/, closes/ or incidents/ (raw has its own S3 lifecycle; the ledger is
Object Lock).

Every time is our clock's: when a version was superseded is the publish_log
row that switched away from it (a version never switched to: the fetch time in
its footer); when a generation replaced a prefix is stamped in its footer.
S3's LastModified is never used, so a replay on a simulated clock vacuums as
production would.

Crash safety: selecting reads only; deleting is idempotent. A SIGKILL part-way
leaves some of the selected objects, which the next run selects again.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from collections.abc import Iterable
from typing import Any

from ssp_revenue.core import schema
from ssp_revenue.finalize.freeze import LedgerEntry
from ssp_revenue.lake import logs, publish, store
from ssp_revenue.lake.catalog import GlueCatalog

_VERSION_KEY = re.compile(r"^tables/revenue/revenue_date=([0-9-]+)/ssp=([^/]+)/version=([0-9a-f]+)/")
_LOG_KEY = re.compile(
    r"^tables/(?P<table>[a-z_]+)/(?:generation=(?P<gen>[0-9a-f]+)/)?"
    r"revenue_date=(?P<date>[0-9-]+)/ssp=(?P<ssp>[^/]+)/[^/]+$")
DELETE_BATCH = 1000
VACUUM_TAG = "ssp-revenue-vacuum"


@dataclasses.dataclass(frozen=True)
class Candidate:
    prefix: str
    keys: tuple[str, ...]
    bytes: int
    superseded_at: dt.datetime
    why: str


@dataclasses.dataclass
class VacuumPlan:
    now: dt.datetime
    grace: dt.timedelta
    doomed: list[Candidate] = dataclasses.field(default_factory=list)
    kept: dict[str, int] = dataclasses.field(default_factory=dict)  # why kept -> prefixes

    def keep(self, why: str) -> None:
        self.kept[why] = self.kept.get(why, 0) + 1

    @property
    def bytes(self) -> int:
        return sum(c.bytes for c in self.doomed)

    @property
    def objects(self) -> int:
        return sum(len(c.keys) for c in self.doomed)

    def summary(self, applied: bool) -> str:
        verb = "deleted" if applied else "would delete"
        lines = [f"{verb} {len(self.doomed)} prefixes, {self.objects} objects, {self.bytes:,} bytes "
                 f"(superseded before {(self.now - self.grace).isoformat()})"]
        lines += [f"  {c.prefix}  {c.bytes:,} bytes  ({c.why})" for c in self.doomed]
        lines += [f"kept {n} prefixes: {why}" for why, n in sorted(self.kept.items())]
        return "\n".join(lines)


def _objects(s3: Any, bucket: str, prefix: str) -> dict[str, int]:
    return {o["Key"]: int(o["Size"]) for o in store.list_objects(s3, bucket, prefix)}


def protected_versions(s3: Any, bucket: str) -> set[tuple[str, str, str]]:
    """(date, SSP, version) named by the ledger, an adjustment batch or a close manifest."""
    named: set[tuple[str, str, str]] = set()
    for key in store.list_keys(s3, bucket, "ledger/finalized/"):
        entry = LedgerEntry.from_json(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        named.add((entry.revenue_date.isoformat(), entry.ssp, entry.version))
    adjustment_files = [k for k in store.list_keys(s3, bucket, "tables/revenue_adjustments/")
                        if k.endswith(".parquet")]
    batches = store.read_parquet_files(s3, bucket, schema.REVENUE_ADJUSTMENTS, adjustment_files)
    for row in batches.select(["revenue_date", "ssp", "frozen_version", "previous_version",
                               "source_version"]).to_pylist():
        for column in ("frozen_version", "previous_version", "source_version"):
            named.add((row["revenue_date"].isoformat(), row["ssp"], row[column]))
    for key in store.list_keys(s3, bucket, "closes/"):
        if key.endswith("manifest.json"):
            manifest = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
            for where, version in manifest.get("frozen_versions", {}).items():
                ssp, _, day = where.partition("/")
                named.add((day, ssp, version))
    return named


def plan(s3: Any, catalog: GlueCatalog, *, now: dt.datetime, grace: dt.timedelta) -> VacuumPlan:
    """What a vacuum at ``now`` would delete; reads only."""
    result = VacuumPlan(now, grace)
    _plan_versions(s3, catalog, result)
    for table in logs.COMPACTABLE:
        _plan_log_prefixes(s3, catalog, table, result)
    return result


def _plan_versions(s3: Any, catalog: GlueCatalog, result: VacuumPlan) -> None:
    bucket = catalog.bucket
    by_version: dict[tuple[str, str, str], dict[str, int]] = {}
    for key, size in _objects(s3, bucket, "tables/revenue/").items():
        match = _VERSION_KEY.match(key)
        if match:
            by_version.setdefault((match[1], match[2], match[3]), {})[key] = size
    live = {(p.revenue_date, p.ssp, publish.version_of(p.location)) for p in catalog.partitions("revenue")}
    named = protected_versions(s3, bucket)
    histories: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for (day, ssp, version), objects in sorted(by_version.items()):
        prefix = store.version_prefix("revenue", ssp, dt.date.fromisoformat(day), version)
        if (day, ssp, version) in live:
            result.keep("live")
            continue
        if (day, ssp, version) in named:
            result.keep("named by the ledger, an adjustment or a close")
            continue
        if (day, ssp) not in histories:
            histories[(day, ssp)] = publish.read_publish_log(
                s3, catalog, ssp, dt.date.fromisoformat(day)).to_pylist()
        switched = [r["published_at"] for r in histories[(day, ssp)]
                    if r["outcome"] == "published" and r["previous_version"] == version]
        at = max(switched) if switched else _written_at(s3, bucket, objects)
        if at is None:
            result.keep("no time it was superseded")
            continue
        if result.now - at < result.grace:
            result.keep("superseded within the reader grace period")
            continue
        why = "superseded" if switched else "never switched to"
        result.doomed.append(Candidate(prefix, tuple(sorted(objects)), sum(objects.values()), at, why))


def _written_at(s3: Any, bucket: str, objects: dict[str, int]) -> dt.datetime | None:
    """A version nobody switched to (a lost race, a crash before the switch): its fetch time."""
    column = schema.REVENUE.get_field_index("fetched_at")
    latest: dt.datetime | None = None
    for key in objects:
        meta = store.read_footer(s3, bucket, key)
        if meta is None:
            continue
        for group in range(meta.num_row_groups):
            stats = meta.row_group(group).column(column).statistics
            if stats is not None and stats.has_min_max:
                latest = stats.max if latest is None else max(latest, stats.max)
    return latest


def _plan_log_prefixes(s3: Any, catalog: GlueCatalog, table: str, result: VacuumPlan) -> None:
    bucket = catalog.bucket
    prefixes: dict[tuple[str, str], dict[str, dict[str, int]]] = {}
    for key, size in _objects(s3, bucket, f"tables/{table}/").items():
        match = _LOG_KEY.match(key)
        if match and match["table"] == table:
            prefix = key.rsplit("/", 1)[0] + "/"
            prefixes.setdefault((match["date"], match["ssp"]), {}).setdefault(prefix, {})[key] = size
    for (day, ssp), found in sorted(prefixes.items()):
        if len(found) < 2:
            continue  # never compacted: its one prefix is live
        live = logs.live_prefix(catalog, table, ssp, dt.date.fromisoformat(day))
        if live is None:
            continue
        live_holds = logs.held(s3, bucket, live)
        live_at = logs.compacted_at(s3, bucket, live)
        for prefix, objects in sorted(found.items()):
            if prefix == live:
                continue
            if not logs.held(s3, bucket, prefix) <= live_holds:
                result.keep("holds rows the live generation does not")
                continue
            own = logs.compacted_at(s3, bucket, prefix)
            times = [t for t in (live_at, own) if t is not None]
            if not times:
                result.keep("no time it was superseded")
                continue
            at = max(times)
            if result.now - at < result.grace:
                result.keep("superseded within the reader grace period")
                continue
            result.doomed.append(Candidate(prefix, tuple(sorted(objects)), sum(objects.values()), at,
                                           "compacted into the live generation"))


def apply(s3: Any, bucket: str, doomed: Iterable[Candidate], *, mode: str = "delete") -> int:
    """Delete (or tag, for an S3 lifecycle rule to expire) the selected objects."""
    keys = [k for c in doomed for k in c.keys]
    if mode == "tag":
        for key in keys:
            s3.put_object_tagging(Bucket=bucket, Key=key,
                                  Tagging={"TagSet": [{"Key": VACUUM_TAG, "Value": "expired"}]})
        return len(keys)
    for start in range(0, len(keys), DELETE_BATCH):
        batch = keys[start:start + DELETE_BATCH]
        s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True})
    return len(keys)
