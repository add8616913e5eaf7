-- Latest validated figures per (revenue_date, ssp); preliminary until frozen.
-- Partitions are registered in Glue by the publish step, one location per
-- partition (the live version=<hash>/ prefix): no partition projection, since
-- Athena ignores Glue-registered partitions when projection is on.
CREATE EXTERNAL TABLE IF NOT EXISTS ssp_revenue.revenue (
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
  raw_object      string
)
PARTITIONED BY (revenue_date date, ssp string)
STORED AS PARQUET
LOCATION 's3://ssp-revenue/tables/revenue/'
TBLPROPERTIES ('classification' = 'parquet');
