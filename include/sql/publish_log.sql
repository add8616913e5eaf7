-- One row per publish attempt that passed validation: what was fetched when,
-- which version it produced, and whether the partition was switched.
CREATE EXTERNAL TABLE IF NOT EXISTS ssp_revenue.publish_log (
  table_name        string,
  version           string,
  previous_version  string,
  outcome           string,        -- 'published' (location switched) or 'unchanged'
  fetched_at        timestamp,
  published_at      timestamp,
  row_count         bigint,
  impressions       bigint,
  clicks            bigint,
  revenue           decimal(38,6),
  currency          string,
  raw_object        string,
  location          string
)
PARTITIONED BY (revenue_date date, ssp string)
STORED AS PARQUET
LOCATION 's3://ssp-revenue/tables/publish_log/'
TBLPROPERTIES ('classification' = 'parquet');
