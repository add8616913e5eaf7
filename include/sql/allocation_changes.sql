-- Allocations recomputed on purpose (`ssp-revenue allocate --recompute`): per
-- (revenue_date, ssp, target) the yen before and after, and the two rules
-- versions. One file per recomputation; allocation_final then points at the
-- new version, and the old version's files stay where they were.
CREATE EXTERNAL TABLE IF NOT EXISTS ssp_revenue.allocation_changes (
  target                  string,
  previous_jpy            decimal(18,0),
  revenue_jpy             decimal(18,0),
  delta_jpy               decimal(18,0),
  previous_rules_version  string,
  rules_version           string,
  source_version          string,
  recomputed_at           timestamp
)
PARTITIONED BY (revenue_date date, ssp string)
STORED AS PARQUET
LOCATION 's3://ssp-revenue/tables/allocation_changes/'
TBLPROPERTIES ('classification' = 'parquet');
