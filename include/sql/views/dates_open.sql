-- Dates fetched (or tried) but not frozen yet: attempts so far, how many
-- validated, and the last attempt. A validated fetch is a publish_log row; a
-- failed one is a fetch or validate row of pipeline_events.
CREATE OR REPLACE VIEW ssp_revenue.dates_open AS
WITH attempts AS (
  SELECT revenue_date, ssp, fetched_at AS attempted_at, 'validated' AS result
  FROM ssp_revenue.publish_log
  UNION ALL
  SELECT revenue_date, ssp, recorded_at AS attempted_at, reason AS result
  FROM ssp_revenue.pipeline_events
  WHERE step IN ('fetch', 'validate')
)
SELECT a.revenue_date, a.ssp,
       count(*) AS attempts,
       sum(CASE WHEN a.result = 'validated' THEN 1 ELSE 0 END) AS validated,
       max(a.attempted_at) AS last_attempt
FROM attempts a
WHERE NOT EXISTS (
  SELECT 1 FROM ssp_revenue.revenue_final f
  WHERE f.revenue_date = a.revenue_date AND f.ssp = a.ssp
)
GROUP BY a.revenue_date, a.ssp
