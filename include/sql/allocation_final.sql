-- Frozen revenue split by the business team's rules, in whole yen: for each
-- (revenue_date, ssp) the targets add up exactly to the frozen total in JPY
-- (largest-remainder rounding). Written once per (revenue_date, ssp) and
-- rules version; the partition's Parameters name the rules version in use.
CREATE EXTERNAL TABLE IF NOT EXISTS ssp_revenue.allocation_final (
  target          string,
  revenue_jpy     decimal(18,0),
  currency        string,
  fx_rate         decimal(18,6),
  rules_version   string,
  source_version  string
)
PARTITIONED BY (revenue_date date, ssp string)
STORED AS PARQUET
LOCATION 's3://ssp-revenue/tables/allocation_final/'
TBLPROPERTIES ('classification' = 'parquet');
