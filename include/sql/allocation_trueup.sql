-- The month-level true-up of a statement within tolerance, per allocation target,
-- in whole yen: trueup_jpy = paid_jpy - frozen_jpy, split in proportion to the
-- month's allocation_final by the largest-remainder method, so that for each
-- (month, ssp) sum(allocation_final) + sum(trueup_jpy) = the statement in yen.
-- allocation_final and revenue_final are never rewritten; a corrected statement
-- points the partition at its own true-up (statement=<sha> prefix).
CREATE EXTERNAL TABLE IF NOT EXISTS ssp_revenue.allocation_trueup (
  month           string,
  target          string,
  frozen_jpy      decimal(18,0),
  trueup_jpy      decimal(18,0),
  paid_jpy        decimal(18,0),
  statement_id    string,
  source_version  string
)
PARTITIONED BY (revenue_date date, ssp string)
STORED AS PARQUET
LOCATION 's3://ssp-revenue/tables/allocation_trueup/'
TBLPROPERTIES ('classification' = 'parquet');
