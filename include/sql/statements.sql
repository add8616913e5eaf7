-- Monthly statements as the SSP issued them: one row per statement line, in the
-- statement's currency, exact decimals. Partition revenue_date = the first day of
-- the statement's month. Every accepted statement of a month is kept (a corrected
-- one names the statement it replaces); is_current marks the one in force. The
-- raw body is raw_object, landed once under statements/raw/.
CREATE EXTERNAL TABLE IF NOT EXISTS ssp_revenue.statements (
  month            string,
  statement_id     string,
  replaces         string,
  account          string,
  currency         string,
  payment_fx_rate  decimal(18,6),
  issued_at        timestamp,
  line             bigint,
  kind             string,
  for_month        string,
  description      string,
  amount           decimal(18,6),
  statement_total  decimal(18,6),
  is_current       boolean,
  source_version   string,
  fetched_at       timestamp,
  raw_object       string
)
PARTITIONED BY (revenue_date date, ssp string)
STORED AS PARQUET
LOCATION 's3://ssp-revenue/tables/statements/'
TBLPROPERTIES ('classification' = 'parquet');
