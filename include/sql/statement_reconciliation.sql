-- Per (SSP, month, currency): what we froze plus the adjustments booked for the
-- month's dates ("reported") against what the current statement pays ("paid"),
-- in the SSP's currency and in whole yen. variance = paid - reported;
-- variance_share = variance / reported. status says whether it is within the
-- SSP's tolerance (then the month has a true-up in allocation_trueup).
CREATE EXTERNAL TABLE IF NOT EXISTS ssp_revenue.statement_reconciliation (
  month               string,
  currency            string,
  statement_id        string,
  statement_currency  string,
  frozen              decimal(18,6),
  adjustments         decimal(18,6),
  reported            decimal(18,6),
  paid                decimal(18,6),
  variance            decimal(18,6),
  variance_share      decimal(18,6),
  frozen_jpy          decimal(18,0),
  adjustments_jpy     decimal(18,0),
  reported_jpy        decimal(18,0),
  paid_jpy            decimal(18,0),
  variance_jpy        decimal(18,0),
  tolerance_pct       decimal(18,6),
  status              string,
  explanation         string,
  reconciled_at       timestamp
)
PARTITIONED BY (revenue_date date, ssp string)
STORED AS PARQUET
LOCATION 's3://ssp-revenue/tables/statement_reconciliation/'
TBLPROPERTIES ('classification' = 'parquet');
