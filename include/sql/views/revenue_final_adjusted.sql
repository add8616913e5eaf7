-- Frozen figures plus every adjustment detected to date, per grain key.
CREATE OR REPLACE VIEW ssp_revenue.revenue_final_adjusted AS
SELECT revenue_date, ssp, media, ad_unit, country, device, currency,
       sum(impressions) AS impressions, sum(clicks) AS clicks, sum(revenue) AS revenue,
       sum(CASE WHEN kind = 'adjustment' THEN revenue ELSE 0 END) AS adjusted_by
FROM (
  SELECT revenue_date, ssp, media, ad_unit, country, device, currency,
         impressions, clicks, revenue, 'final' AS kind
  FROM ssp_revenue.revenue_final
  UNION ALL
  SELECT revenue_date, ssp, media, ad_unit, country, device, currency,
         impressions_delta, clicks_delta, revenue_delta, 'adjustment' AS kind
  FROM ssp_revenue.revenue_adjustments
) t
GROUP BY revenue_date, ssp, media, ad_unit, country, device, currency
