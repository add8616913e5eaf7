-- Dates frozen from a version fetched after the cutoff (no version by it).
-- The cutoff here is the default: 60 h after the start of the date in
-- Asia/Tokyo, i.e. 51 h after 00:00 UTC of the date.
CREATE OR REPLACE VIEW ssp_revenue.dates_frozen_late AS
SELECT revenue_date, ssp, max(fetched_at) AS fetched_at, max(finalized_at) AS finalized_at
FROM ssp_revenue.revenue_final
GROUP BY revenue_date, ssp
HAVING max(fetched_at) > CAST(revenue_date AS timestamp) + INTERVAL '51' HOUR
