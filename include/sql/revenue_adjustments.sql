-- Restatements seen after the freeze, as per-key deltas from the previous
-- recorded state (the frozen version, then each adjusted version in turn):
-- revenue_final + sum of deltas = the latest figures.
CREATE EXTERNAL TABLE IF NOT EXISTS ssp_revenue.revenue_adjustments (
  media              string,
  ad_unit            string,
  country            string,
  device             string,
  impressions_delta  bigint,
  clicks_delta       bigint,
  revenue_delta      decimal(18,6),
  currency           string,
  sequence           bigint,
  detected_at        timestamp,
  frozen_version     string,
  previous_version   string,
  source_version     string
)
PARTITIONED BY (revenue_date date, ssp string)
STORED AS PARQUET
LOCATION 's3://ssp-revenue/tables/revenue_adjustments/'
TBLPROPERTIES ('classification' = 'parquet');
