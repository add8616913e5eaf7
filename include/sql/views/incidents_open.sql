-- Incidents not resolved yet, each with its latest state (one row per incident).
CREATE OR REPLACE VIEW ssp_revenue.incidents_open AS
SELECT incident_id, ssp, reason, affected_dates, consequences, first_seen, last_seen, detail, runbook
FROM (
  SELECT i.*,
         row_number() OVER (
           PARTITION BY incident_id
           ORDER BY recorded_at DESC, CASE state WHEN 'resolved' THEN 2 WHEN 'updated' THEN 1 ELSE 0 END DESC
         ) AS latest
  FROM ssp_revenue.incidents i
) t
WHERE latest = 1 AND state <> 'resolved'
