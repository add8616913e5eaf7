-- One row per fetch that returned a body, identical to an earlier one or not. The
-- body itself is stored once per distinct sha256 under raw/; raw_object names it.
-- A fetch whose report identity (body + content facts) is the live version's skips
-- parse, validation and publish: publish_log logs it 'unchanged'.
CREATE EXTERNAL TABLE IF NOT EXISTS ssp_revenue.fetch_log (
  fetched_at  timestamp,
  sha256      string,     -- of the body as served
  bytes       bigint,
  report      string,     -- sha256 + ':' + hash of the facts about the content
  facts       string,     -- JSON: what the API said (job id, stated totals, ...)
  raw_object  string,     -- s3://bucket/raw/ssp=S/revenue_date=D/<sha256>.<ext>
  stored      boolean     -- false: those bytes were already landed for this (SSP, date)
)
PARTITIONED BY (revenue_date date, ssp string)
STORED AS PARQUET
LOCATION 's3://ssp-revenue/tables/fetch_log/'
TBLPROPERTIES ('classification' = 'parquet');
