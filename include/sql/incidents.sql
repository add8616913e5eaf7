-- One row per state of an incident: 'opened' (paged once), 'updated' (more dates
-- or consequences, not paged), 'resolved' (the first run without the problem).
-- Partitioned by the incident's first affected revenue date and its SSP ('all'
-- for problems of every SSP, such as a rejected rules file).
CREATE EXTERNAL TABLE IF NOT EXISTS ssp_revenue.incidents (
  incident_id     string,    -- problem key + occurrence number, e.g. adpulse.auth.1
  problem         string,    -- ssp=adpulse/reason=auth[/revenue_date=...]
  reason          string,
  state           string,    -- 'opened', 'updated' or 'resolved'
  affected_dates  string,    -- comma-separated ISO dates, all known so far
  consequences    string,    -- one line per date: what followed from it (e.g. frozen late)
  first_seen      timestamp,
  last_seen       timestamp,
  detail          string,
  runbook         string,    -- docs/runbook.md#<reason>
  recorded_at     timestamp
)
PARTITIONED BY (revenue_date date, ssp string)
STORED AS PARQUET
LOCATION 's3://ssp-revenue/tables/incidents/'
TBLPROPERTIES ('classification' = 'parquet');
