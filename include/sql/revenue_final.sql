-- Frozen figures: for each (revenue_date, ssp), the newest validated version
-- fetched at or before the cutoff. Each partition is created once and never
-- moved; its Parameters carry source_version, row_count, revenue_total,
-- impressions_total, clicks_total, currency, cutoff, finalized_at and late.
CREATE EXTERNAL TABLE IF NOT EXISTS ssp_revenue.revenue_final (
  media           string,
  ad_unit         string,
  country         string,
  device          string,
  impressions     bigint,
  clicks          bigint,
  revenue         decimal(18,6),
  currency        string,
  tz_policy       string,        -- business_zone | hourly_rebucketed | ssp_date
  source_version  string,
  fetched_at      timestamp,
  raw_object      string,
  finalized_at    timestamp
)
PARTITIONED BY (revenue_date date, ssp string)
STORED AS PARQUET
LOCATION 's3://ssp-revenue/tables/revenue_final/'
TBLPROPERTIES ('classification' = 'parquet');
