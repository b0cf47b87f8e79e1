-- gpurent's weekly statistics (METHODOLOGY.md sections 2, 3 and 6) in portable SQL:
-- runs unchanged on Spark SQL (3.4+) and DuckDB (1.0+) over the store's `offers`
-- table. One row per gpu_model x bloc x price_class, as `rows` in summary.json.
--
-- The caller defines two relations and five parameters (scripts/weekly-stats.py does):
--   offers    the store: read_parquet('<store>/offers/*/*.parquet', hive_partitioning
--             = true) in DuckDB, spark.read.parquet('<store>/offers') in Spark
--   validity  (provider, valid_hours) from tables/providers.toml; a provider
--             `aggregator:cloud` falls back to `aggregator`, then to the default
--   ${from}, ${to}             the week's Monday and Sunday, 'YYYY-MM-DD'
--   ${scan_from}               Monday of the week holding ${from} minus the longest
--                              validity: every price still in force is found
--   ${low}, ${high}            the implausible-price multiples (0.1, 10)
--   ${default_valid_hours}     validity of providers the table does not list
-- Session time zone UTC: `observed_at` is UTC without a zone.
WITH obs AS (
  SELECT observed_at AS t, feed, offer_id, price_class, provider, gpu_model, bloc,
         CAST(usd_per_gpu_hour AS DOUBLE) AS v,
         CAST(COALESCE(usd_per_gpu_hour_ex_vat, usd_per_gpu_hour) AS DOUBLE) AS vx,
         COALESCE(fractional_gpu, FALSE) AS frac,
         COALESCE(peer, FALSE) AS peer,
         date_trunc('week', observed_at) AS wk
  FROM offers
  WHERE date >= DATE '${scan_from}' AND date <= DATE '${to}'
),
-- Section 6: implausible = outside [low, high] x the median of the whole-GPU
-- observations of the same model in the same ISO week of observation.
week_median AS (
  SELECT gpu_model, wk, percentile_cont(0.5) WITHIN GROUP (ORDER BY v) AS m
  FROM obs WHERE NOT frac AND v > 0 AND v < 1e300
  GROUP BY gpu_model, wk
),
usable AS (
  SELECT o.* FROM obs o JOIN week_median w ON o.gpu_model = w.gpu_model AND o.wk = w.wk
  WHERE NOT o.frac AND o.v > 0 AND o.v < 1e300
    AND o.v >= w.m * ${low} AND o.v <= w.m * ${high}
),
-- Section 2: a price stands until its feed and provider's next snapshot or until it
-- expires after the provider's validity, whichever is first.
snaps AS (
  SELECT feed, provider, t, LEAD(t) OVER (PARTITION BY feed, provider ORDER BY t) AS next_t
  FROM (SELECT DISTINCT feed, provider, t FROM obs) s
),
valid AS (
  SELECT p.provider,
         COALESCE(CASE WHEN v1.provider IS NOT NULL THEN v1.valid_hours
                       ELSE v2.valid_hours END, ${default_valid_hours}) AS hours
  FROM (SELECT DISTINCT provider FROM obs) p
  LEFT JOIN validity v1 ON v1.provider = p.provider
  LEFT JOIN validity v2 ON v2.provider = split_part(p.provider, ':', 1)
),
spans AS (
  SELECT u.*,
         CASE WHEN s.next_t IS NOT NULL
                   AND s.next_t < u.t + INTERVAL '1' SECOND * CAST(ROUND(va.hours * 3600) AS INT)
              THEN s.next_t
              ELSE u.t + INTERVAL '1' SECOND * CAST(ROUND(va.hours * 3600) AS INT) END AS t_end
  FROM usable u
  JOIN snaps s ON s.feed = u.feed AND s.provider = u.provider AND s.t = u.t
  JOIN valid va ON va.provider = u.provider
),
-- An offer counts once in the week, at its last price in force in the week.
standing AS (
  SELECT * FROM (
    SELECT sp.*, ROW_NUMBER() OVER (
             PARTITION BY feed, offer_id, price_class, provider, gpu_model, bloc, peer
             ORDER BY t DESC) AS latest
    FROM spans sp
    WHERE sp.t < DATE '${to}' + INTERVAL '1' DAY AND sp.t_end > DATE '${from}'
  ) x WHERE latest = 1
),
-- Section 10: a peer's offers give way where an own feed has the provider, model and
-- class in force in the week.
own_cells AS (
  SELECT DISTINCT provider, gpu_model, price_class FROM standing WHERE NOT peer
),
counted AS (
  SELECT s.* FROM standing s
  LEFT JOIN own_cells c ON s.peer AND c.provider = s.provider
       AND c.gpu_model = s.gpu_model AND c.price_class = s.price_class
  WHERE c.provider IS NULL
),
-- Section 3: each provider's median, then the median of those medians.
provider_medians AS (
  SELECT gpu_model, bloc, price_class, provider,
         percentile_cont(0.5) WITHIN GROUP (ORDER BY v) AS pm,
         percentile_cont(0.5) WITHIN GROUP (ORDER BY vx) AS pmx
  FROM counted GROUP BY gpu_model, bloc, price_class, provider
),
balanced AS (
  SELECT gpu_model, bloc, price_class, COUNT(*) AS providers,
         percentile_cont(0.5) WITHIN GROUP (ORDER BY pm) AS provider_median,
         percentile_cont(0.5) WITHIN GROUP (ORDER BY pmx) AS provider_median_ex_vat
  FROM provider_medians GROUP BY gpu_model, bloc, price_class
),
offer_level AS (
  SELECT gpu_model, bloc, price_class, COUNT(*) AS offers,
         MIN(v) AS min,
         percentile_cont(0.1) WITHIN GROUP (ORDER BY v) AS p10,
         percentile_cont(0.25) WITHIN GROUP (ORDER BY v) AS p25,
         percentile_cont(0.5) WITHIN GROUP (ORDER BY v) AS median,
         percentile_cont(0.75) WITHIN GROUP (ORDER BY v) AS p75,
         percentile_cont(0.9) WITHIN GROUP (ORDER BY v) AS p90
  FROM counted GROUP BY gpu_model, bloc, price_class
)
SELECT o.gpu_model, o.bloc, o.price_class, o.offers, b.providers,
       o.min, o.p10, o.p25, o.median, o.p75, o.p90,
       b.provider_median, b.provider_median_ex_vat
FROM offer_level o
JOIN balanced b ON b.gpu_model = o.gpu_model AND b.bloc = o.bloc
     AND b.price_class = o.price_class
ORDER BY o.gpu_model, o.bloc, o.price_class
