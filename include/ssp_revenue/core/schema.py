"""The canonical revenue schema: one grain for every SSP, decimal money, lineage."""

from __future__ import annotations

import pyarrow as pa

MONEY = pa.decimal128(18, 6)
MONEY_SCALE = 6
SCHEMA_VERSION = "1"

GRAIN = ("revenue_date", "ssp", "media", "ad_unit", "country", "device")
TZ_POLICIES = ("business_zone", "hourly_rebucketed", "ssp_date")
PARTITION_KEYS = ("revenue_date", "ssp")
MEASURES = ("impressions", "clicks", "revenue")
LINEAGE = ("source_version", "fetched_at", "raw_object")

REVENUE = pa.schema(
    [
        pa.field("revenue_date", pa.date32(), nullable=False),
        pa.field("ssp", pa.string(), nullable=False),
        pa.field("media", pa.string(), nullable=False),
        pa.field("ad_unit", pa.string(), nullable=False),
        pa.field("country", pa.string(), nullable=False),
        pa.field("device", pa.string(), nullable=False),
        pa.field("impressions", pa.int64(), nullable=False),
        pa.field("clicks", pa.int64(), nullable=False),
        pa.field("revenue", MONEY, nullable=False),
        pa.field("currency", pa.string(), nullable=False),
        # How the SSP's report time zone was mapped onto the business date (see README).
        pa.field("tz_policy", pa.string(), nullable=False),
        pa.field("source_version", pa.string(), nullable=False),
        pa.field("fetched_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("raw_object", pa.string(), nullable=False),
    ],
    metadata={"ssp_revenue.schema_version": SCHEMA_VERSION},
)

# The business content of a batch: what the version hash is computed over.
CONTENT_COLUMNS = tuple(n for n in REVENUE.names if n not in LINEAGE)
NORMALISED = pa.schema([REVENUE.field(n) for n in CONTENT_COLUMNS])

PUBLISH_LOG = pa.schema(
    [
        pa.field("revenue_date", pa.date32(), nullable=False),
        pa.field("ssp", pa.string(), nullable=False),
        pa.field("table_name", pa.string(), nullable=False),
        pa.field("version", pa.string(), nullable=False),
        pa.field("previous_version", pa.string()),
        pa.field("outcome", pa.string(), nullable=False),
        pa.field("fetched_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("published_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("row_count", pa.int64(), nullable=False),
        pa.field("impressions", pa.int64(), nullable=False),
        pa.field("clicks", pa.int64(), nullable=False),
        pa.field("revenue", pa.decimal128(38, MONEY_SCALE), nullable=False),
        pa.field("currency", pa.string(), nullable=False),
        pa.field("raw_object", pa.string(), nullable=False),
        pa.field("location", pa.string(), nullable=False),
    ]
)


# Frozen figures: the revenue columns as they were at the cutoff, plus when they were frozen.
REVENUE_FINAL = pa.schema(
    [*REVENUE, pa.field("finalized_at", pa.timestamp("us", tz="UTC"), nullable=False)],
    metadata=REVENUE.metadata,
)

# Restatements seen after the freeze, as per-key deltas between two published versions.
REVENUE_ADJUSTMENTS = pa.schema(
    [REVENUE.field(n) for n in GRAIN]
    + [
        pa.field("impressions_delta", pa.int64(), nullable=False),
        pa.field("clicks_delta", pa.int64(), nullable=False),
        pa.field("revenue_delta", MONEY, nullable=False),
        pa.field("currency", pa.string(), nullable=False),
        pa.field("sequence", pa.int64(), nullable=False),
        pa.field("detected_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("frozen_version", pa.string(), nullable=False),
        pa.field("previous_version", pa.string(), nullable=False),
        pa.field("source_version", pa.string(), nullable=False),
    ]
)

# What the pipeline decided for one (SSP, date) and step: ok, converging or actionable.
PIPELINE_EVENTS = pa.schema(
    [
        pa.field("revenue_date", pa.date32(), nullable=False),
        pa.field("ssp", pa.string(), nullable=False),
        pa.field("step", pa.string(), nullable=False),
        pa.field("severity", pa.string(), nullable=False),
        pa.field("reason", pa.string()),
        pa.field("detail", pa.string(), nullable=False),
        pa.field("recorded_at", pa.timestamp("us", tz="UTC"), nullable=False),
    ]
)


# One row per fetch that returned a body, identical or not: when, which bytes, what the API
# said, and the raw object those bytes are stored in (each distinct body once).
FETCH_LOG = pa.schema(
    [
        pa.field("revenue_date", pa.date32(), nullable=False),
        pa.field("ssp", pa.string(), nullable=False),
        pa.field("fetched_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("sha256", pa.string(), nullable=False),
        pa.field("bytes", pa.int64(), nullable=False),
        pa.field("report", pa.string(), nullable=False),  # body sha256 + content facts: parse's input
        pa.field("facts", pa.string(), nullable=False),  # the API's facts for this fetch, JSON
        pa.field("raw_object", pa.string(), nullable=False),
        pa.field("stored", pa.bool_(), nullable=False),  # false: the body was already landed
    ]
)

# Frozen revenue split between allocation targets, in whole yen.
YEN = pa.decimal128(18, 0)
ALLOCATION_FINAL = pa.schema(
    [
        pa.field("revenue_date", pa.date32(), nullable=False),
        pa.field("ssp", pa.string(), nullable=False),
        pa.field("target", pa.string(), nullable=False),
        pa.field("revenue_jpy", YEN, nullable=False),
        pa.field("currency", pa.string(), nullable=False),
        pa.field("fx_rate", pa.decimal128(18, 6), nullable=False),
        pa.field("rules_version", pa.string(), nullable=False),
        pa.field("source_version", pa.string(), nullable=False),
    ]
)

# An allocation recomputed on purpose with other rules: per target, what it was and what it is now.
ALLOCATION_CHANGES = pa.schema(
    [
        pa.field("revenue_date", pa.date32(), nullable=False),
        pa.field("ssp", pa.string(), nullable=False),
        pa.field("target", pa.string(), nullable=False),
        pa.field("previous_jpy", YEN, nullable=False),
        pa.field("revenue_jpy", YEN, nullable=False),
        pa.field("delta_jpy", YEN, nullable=False),
        pa.field("previous_rules_version", pa.string(), nullable=False),
        pa.field("rules_version", pa.string(), nullable=False),
        pa.field("source_version", pa.string(), nullable=False),
        pa.field("recomputed_at", pa.timestamp("us", tz="UTC"), nullable=False),
    ]
)


# One row per state an incident reaches: opened (paged), updated (its dates or
# consequences grew; not paged), resolved (notified). Partitioned by the
# incident's first affected revenue date and its SSP ("all" for global problems).
INCIDENTS = pa.schema(
    [
        pa.field("revenue_date", pa.date32(), nullable=False),
        pa.field("ssp", pa.string(), nullable=False),
        pa.field("incident_id", pa.string(), nullable=False),
        pa.field("problem", pa.string(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("state", pa.string(), nullable=False),
        pa.field("affected_dates", pa.string(), nullable=False),  # comma-separated ISO dates
        pa.field("consequences", pa.string(), nullable=False),  # "date: what followed" lines
        pa.field("first_seen", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("last_seen", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("detail", pa.string(), nullable=False),
        pa.field("runbook", pa.string(), nullable=False),
        pa.field("recorded_at", pa.timestamp("us", tz="UTC"), nullable=False),
    ]
)

# Monthly statements, one row per statement line; partition revenue_date = the month's first day.
# Every accepted statement of the month is kept; ``is_current`` marks the one in force.
STATEMENTS = pa.schema(
    [
        pa.field("revenue_date", pa.date32(), nullable=False),
        pa.field("ssp", pa.string(), nullable=False),
        pa.field("month", pa.string(), nullable=False),
        pa.field("statement_id", pa.string(), nullable=False),
        pa.field("replaces", pa.string()),
        pa.field("account", pa.string(), nullable=False),
        pa.field("currency", pa.string(), nullable=False),
        pa.field("payment_fx_rate", pa.decimal128(18, 6)),
        pa.field("issued_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("line", pa.int64(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("for_month", pa.string(), nullable=False),
        pa.field("description", pa.string(), nullable=False),
        pa.field("amount", MONEY, nullable=False),
        pa.field("statement_total", MONEY, nullable=False),
        pa.field("is_current", pa.bool_(), nullable=False),
        pa.field("source_version", pa.string(), nullable=False),
        pa.field("fetched_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("raw_object", pa.string(), nullable=False),
    ]
)

# Per (SSP, month): what we froze (+ adjustments) against what the current statement pays.
STATEMENT_RECONCILIATION = pa.schema(
    [
        pa.field("revenue_date", pa.date32(), nullable=False),
        pa.field("ssp", pa.string(), nullable=False),
        pa.field("month", pa.string(), nullable=False),
        pa.field("currency", pa.string(), nullable=False),
        pa.field("statement_id", pa.string(), nullable=False),
        pa.field("statement_currency", pa.string(), nullable=False),
        pa.field("frozen", MONEY, nullable=False),
        pa.field("adjustments", MONEY, nullable=False),
        pa.field("reported", MONEY, nullable=False),
        pa.field("paid", MONEY, nullable=False),
        pa.field("variance", MONEY, nullable=False),
        pa.field("variance_share", pa.decimal128(18, 6), nullable=False),
        pa.field("frozen_jpy", YEN, nullable=False),
        pa.field("adjustments_jpy", YEN, nullable=False),
        pa.field("reported_jpy", YEN, nullable=False),
        pa.field("paid_jpy", YEN, nullable=False),
        pa.field("variance_jpy", YEN, nullable=False),
        pa.field("tolerance_pct", pa.decimal128(18, 6), nullable=False),
        pa.field("status", pa.string(), nullable=False),  # within_tolerance | beyond_tolerance
        pa.field("explanation", pa.string(), nullable=False),
        pa.field("reconciled_at", pa.timestamp("us", tz="UTC"), nullable=False),
    ]
)

# The month-level true-up per allocation target: allocation_final + trueup_jpy = the statement in yen.
ALLOCATION_TRUEUP = pa.schema(
    [
        pa.field("revenue_date", pa.date32(), nullable=False),
        pa.field("ssp", pa.string(), nullable=False),
        pa.field("month", pa.string(), nullable=False),
        pa.field("target", pa.string(), nullable=False),
        pa.field("frozen_jpy", YEN, nullable=False),
        pa.field("trueup_jpy", YEN, nullable=False),
        pa.field("paid_jpy", YEN, nullable=False),
        pa.field("statement_id", pa.string(), nullable=False),
        pa.field("source_version", pa.string(), nullable=False),
    ]
)


def data_columns(schema: pa.Schema) -> pa.Schema:
    """The columns a Glue table declares, partition keys excluded."""
    return pa.schema([f for f in schema if f.name not in PARTITION_KEYS])


def athena_type(arrow_type: pa.DataType) -> str:
    """The Glue/Athena type for an Arrow type the project writes."""
    if pa.types.is_decimal(arrow_type):
        return f"decimal({arrow_type.precision},{arrow_type.scale})"
    if pa.types.is_int64(arrow_type):
        return "bigint"
    if pa.types.is_string(arrow_type):
        return "string"
    if pa.types.is_date32(arrow_type):
        return "date"
    if pa.types.is_timestamp(arrow_type):
        return "timestamp"
    if pa.types.is_boolean(arrow_type):
        return "boolean"
    raise TypeError(f"no Athena type for {arrow_type}")
