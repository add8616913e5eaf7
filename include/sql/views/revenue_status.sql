-- The figure to use for each day, with its status: frozen figures once a date
-- is final, the latest validated figures before that.
CREATE OR REPLACE VIEW ssp_revenue.revenue_status AS
SELECT f.revenue_date, f.ssp, f.media, f.ad_unit, f.country, f.device,
       f.impressions, f.clicks, f.revenue, f.currency, f.source_version, f.fetched_at,
       'final' AS status
FROM ssp_revenue.revenue_final f
UNION ALL
SELECT r.revenue_date, r.ssp, r.media, r.ad_unit, r.country, r.device,
       r.impressions, r.clicks, r.revenue, r.currency, r.source_version, r.fetched_at,
       'preliminary' AS status
FROM ssp_revenue.revenue r
WHERE NOT EXISTS (
  SELECT 1 FROM ssp_revenue.revenue_final x
  WHERE x.revenue_date = r.revenue_date AND x.ssp = r.ssp
)
