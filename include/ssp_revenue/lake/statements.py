"""Statements in the lake: each body landed once, refused ones quarantined, the rest published.

    statements/raw/ssp=S/month=M/<sha256>.<ext>        immutable, each distinct body once
    statements/accepted/ssp=S/month=M/<sha256>.json    write-once: it passed validation
    quarantine/statements/ssp=S/month=M/<sha256>.json  write-once: why it was refused

The ``statements`` partition of (M, S) is a pure function of the accepted set,
so statements arriving in any order, twice, or late publish the same table. The
statement in force is the newest (issued_at, id) not replaced by another.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import io
import json
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ssp_revenue.core import schema
from ssp_revenue.core.calendar import Month
from ssp_revenue.core.clock import parse_instant
from ssp_revenue.core.errors import StatementRejected
from ssp_revenue.core.registry import SspConfig
from ssp_revenue.ingest import statements as reading
from ssp_revenue.ingest.statements import Statement
from ssp_revenue.lake import store
from ssp_revenue.lake.catalog import GlueCatalog

TABLE = "statements"


def _where(ssp: str, month: Month) -> str:
    return f"ssp={store.partition_value(ssp)}/month={month}/"


def raw_key(ssp: str, month: Month, digest: str, ext: str) -> str:
    return f"statements/raw/{_where(ssp, month)}{digest}.{ext}"


def accepted_key(ssp: str, month: Month, digest: str) -> str:
    return f"statements/accepted/{_where(ssp, month)}{digest}.json"


def quarantine_key(ssp: str, month: Month, digest: str) -> str:
    return f"quarantine/statements/{_where(ssp, month)}{digest}.json"


@dataclasses.dataclass(frozen=True)
class Landing:
    """What became of one statement body."""

    state: str  # "accepted", "rejected", "seen" (accepted before)
    raw_key: str
    statement: Statement | None = None
    error: StatementRejected | None = None
    fresh: bool = True  # False: this very body was refused before


def _json(data: dict[str, Any]) -> bytes:
    return json.dumps(data, sort_keys=True, default=str).encode()


def land(body: bytes, config: SspConfig, month: Month, *, s3: Any, bucket: str, now: dt.datetime,
         today: dt.date, source: str) -> Landing:
    """Land the body raw, validate it, and record the verdict once; the same bytes again: 'seen'."""
    digest = hashlib.sha256(body).hexdigest()
    ext = "json" if body.lstrip(b"\xef\xbb\xbf \r\n\t").startswith(b"{") else "csv"
    key = raw_key(config.name, month, digest, ext)
    store.put_once(s3, bucket, key, body, Metadata={"fetched-at": now.isoformat(), "source": source})
    if store.exists(s3, bucket, accepted_key(config.name, month, digest)):
        return Landing("seen", key)
    if store.exists(s3, bucket, quarantine_key(config.name, month, digest)):
        verdict = json.loads(s3.get_object(Bucket=bucket, Key=quarantine_key(config.name, month, digest))
                             ["Body"].read())
        return Landing("rejected", key, error=StatementRejected(str(verdict["error"]), ssp=config.name),
                       fresh=False)
    try:
        statement = reading.parse(config, month, body, sha256=digest, raw_key=key)
        reading.validate(statement, config, expected_month=month, today=today)
    except StatementRejected as exc:
        store.put_once(s3, bucket, quarantine_key(config.name, month, digest),
                       _json({"error": str(exc), "raw_object": key, "fetched_at": now.isoformat(),
                              "source": source}), ContentType="application/json")
        return Landing("rejected", key, error=exc)
    store.put_once(s3, bucket, accepted_key(config.name, month, digest),
                   _json({"raw_object": key, "fetched_at": now.isoformat(), "source": source,
                          "statement_id": statement.statement_id}), ContentType="application/json")
    return Landing("accepted", key, statement=statement)


@dataclasses.dataclass(frozen=True)
class Accepted:
    statement: Statement
    fetched_at: dt.datetime


def accepted(config: SspConfig, month: Month, *, s3: Any, bucket: str) -> list[Accepted]:
    """Every accepted statement of (SSP, month), read again from its raw body."""
    out = []
    for key in store.list_keys(s3, bucket, f"statements/accepted/{_where(config.name, month)}"):
        marker = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        raw = str(marker["raw_object"])
        body = s3.get_object(Bucket=bucket, Key=raw)["Body"].read()
        digest = key.rsplit("/", 1)[1].removesuffix(".json")
        out.append(Accepted(reading.parse(config, month, body, sha256=digest, raw_key=raw),
                            parse_instant(marker["fetched_at"])))
    return sorted(out, key=lambda a: (a.statement.issued_at, a.statement.statement_id, a.statement.sha256))


def rejected(ssp: str, month: Month, *, s3: Any, bucket: str) -> list[dict[str, Any]]:
    return [json.loads(s3.get_object(Bucket=bucket, Key=k)["Body"].read())
            for k in store.list_keys(s3, bucket, f"quarantine/statements/{_where(ssp, month)}")]


def in_force(found: list[Accepted]) -> Accepted | None:
    """The newest statement that no other replaces (a correction names the one it replaces)."""
    replaced = {a.statement.replaces for a in found if a.statement.replaces}
    standing = [a for a in found if a.statement.statement_id not in replaced]
    return max(standing, key=lambda a: (a.statement.issued_at, a.statement.statement_id,
                                        a.statement.sha256), default=None)


def table_of(found: list[Accepted]) -> pa.Table:
    current = in_force(found)
    rows = []
    for item in found:
        s = item.statement
        for line in s.lines:
            rows.append({
                "revenue_date": s.month.first, "ssp": s.ssp, "month": str(s.month),
                "statement_id": s.statement_id, "replaces": s.replaces, "account": s.account,
                "currency": s.currency, "payment_fx_rate": s.payment_fx_rate, "issued_at": s.issued_at,
                "line": line.line, "kind": line.kind, "for_month": line.for_month,
                "description": line.description, "amount": line.amount, "statement_total": s.total,
                "is_current": current is not None and item.statement.sha256 == current.statement.sha256,
                "source_version": s.sha256, "fetched_at": item.fetched_at, "raw_object": s.raw_key,
            })
    return pa.Table.from_pylist(rows, schema=schema.STATEMENTS)


def publish(config: SspConfig, month: Month, *, s3: Any, catalog: GlueCatalog) -> Accepted | None:
    """Point the (month, SSP) partition at the accepted set's version; the statement in force."""
    found = accepted(config, month, s3=s3, bucket=catalog.bucket)
    if not found:
        return None
    current = in_force(found)
    version = hashlib.sha256("\n".join(sorted(a.statement.sha256 for a in found)).encode()).hexdigest()[:32]
    part = catalog.get_partition(TABLE, month.first.isoformat(), config.name)
    prefix = store.version_prefix(TABLE, config.name, month.first, version)
    if part is None or part.location != store.s3_uri(catalog.bucket, prefix):
        sink = io.BytesIO()
        pq.write_table(table_of(found), sink)
        store.put_once(s3, catalog.bucket, prefix + "part-00000.parquet", sink.getvalue())
        location = store.s3_uri(catalog.bucket, prefix)
        catalog.set_partition(TABLE, month.first.isoformat(), config.name, location,
                              {"statements": str(len(found)),
                               "current": current.statement.statement_id if current else ""})
    return current
