-- Every converging and actionable outcome, per (revenue_date, ssp) and step.
CREATE EXTERNAL TABLE IF NOT EXISTS ssp_revenue.pipeline_events (
  step         string,
  severity     string,   -- 'converging' or 'actionable'
  reason       string,
  detail       string,
  recorded_at  timestamp
)
PARTITIONED BY (revenue_date date, ssp string)
STORED AS PARQUET
LOCATION 's3://ssp-revenue/tables/pipeline_events/'
TBLPROPERTIES ('classification' = 'parquet');
