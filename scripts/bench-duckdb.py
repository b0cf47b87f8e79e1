#!/usr/bin/env python3
"""The DuckDB side of the scale benchmark (benches/scale.rs): one query per process,
so that its wall time and peak RSS are measured alone, computing what gpurent computes.

Usage: bench-duckdb.py STORE report YYYY-Www   the week's statistics per model x bloc
                                              x class: sql/weekly_stats.sql, as run by
                                              weekly-stats.py (summary.json's `rows`)
       bench-duckdb.py STORE history MODEL    `gpurent history --model MODEL` (per day,
                                              bloc and class: offers, median, p25, p75)
       bench-duckdb.py STORE prices           `gpurent prices` (the latest price in
                                              force per model, bloc, class, provider)
Prints one JSON object: {"engine", "op", "columns", "rows"}; prices in USD per
GPU-hour, unrounded (gpurent prints 4 decimals). DuckDB runs on 2 threads, in UTC
(engines_common.duckdb_connect). The SQL follows METHODOLOGY.md as
src/analysis/inforce.rs and src/analysis/query.rs implement it.
"""
import datetime as dt
import importlib.util
import json
import pathlib
import sys
import tomllib

sys.dont_write_bytecode = True  # no __pycache__ beside the scripts
from engines_common import duckdb_connect  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("weekly_stats", ROOT / "scripts" / "weekly-stats.py")
weekly = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(weekly)

# `gpurent history`: peers give way to own feeds per provider x model x class x day
# (analysis/peers.rs), then whole-GPU rows only; every stored row counts once.
HISTORY_SQL = """
WITH m AS (
  SELECT CAST(observed_at AS DATE) AS day, gpu_model, bloc, price_class, provider,
         fractional_gpu, CAST(usd_per_gpu_hour AS DOUBLE) AS v,
         COALESCE(peer, FALSE) AS peer
  FROM offers WHERE gpu_model = $model
),
kept AS (
  SELECT * FROM (
    SELECT *, bool_or(NOT peer) OVER (PARTITION BY provider, gpu_model, price_class, day)
              AS own_here
    FROM m) x
  WHERE (NOT peer OR NOT own_here) AND NOT fractional_gpu
)
SELECT strftime(day, '%Y-%m-%d') AS period_utc, gpu_model, bloc, price_class,
       COUNT(*) AS offers, quantile_cont(v, 0.5) AS median_usd_per_gpu_hour,
       quantile_cont(v, 0.25) AS p25_usd_per_gpu_hour,
       quantile_cont(v, 0.75) AS p75_usd_per_gpu_hour
FROM kept GROUP BY ALL ORDER BY period_utc, bloc, price_class
"""

# `gpurent prices`: the offers in force at the latest observation time (life spans as
# in sql/weekly_stats.sql), each at its latest price; a provider's median per cell.
PRICES_SQL = """
WITH obs AS (
  SELECT epoch_ms(observed_at) AS t, feed, offer_id, price_class, provider, gpu_model,
         bloc, CAST(usd_per_gpu_hour AS DOUBLE) AS v,
         COALESCE(fractional_gpu, FALSE) AS frac, COALESCE(peer, FALSE) AS peer,
         date_trunc('week', observed_at) AS wk
  FROM offers WHERE date >= DATE '${scan_from}' AND date <= DATE '${last}'
),
latest AS (SELECT MAX(t) AS now FROM obs),
week_median AS (
  SELECT gpu_model, wk, quantile_cont(v, 0.5) AS m
  FROM obs WHERE NOT frac AND v > 0 AND v < 1e300 GROUP BY gpu_model, wk
),
usable AS (
  SELECT o.* FROM obs o JOIN week_median w ON o.gpu_model = w.gpu_model AND o.wk = w.wk
  WHERE NOT o.frac AND o.v > 0 AND o.v < 1e300 AND o.v >= w.m * 0.1 AND o.v <= w.m * 10.0
),
snaps AS (
  SELECT feed, provider, t, LEAD(t) OVER (PARTITION BY feed, provider ORDER BY t) AS next_t
  FROM (SELECT DISTINCT feed, provider, t FROM obs) s
),
valid AS (
  SELECT p.provider, COALESCE(CASE WHEN v1.provider IS NOT NULL THEN v1.valid_hours
                                   ELSE v2.valid_hours END, ${default_valid_hours}) AS hours
  FROM (SELECT DISTINCT provider FROM obs) p
  LEFT JOIN validity v1 ON v1.provider = p.provider
  LEFT JOIN validity v2 ON v2.provider = split_part(p.provider, ':', 1)
),
spans AS (
  SELECT u.*, LEAST(COALESCE(s.next_t, 9223372036854775807),
                    u.t + CAST(trunc(va.hours * 3600000) AS BIGINT)) AS t_end
  FROM usable u
  JOIN snaps s ON s.feed = u.feed AND s.provider = u.provider AND s.t = u.t
  JOIN valid va ON va.provider = u.provider
),
standing AS (
  SELECT * FROM (
    SELECT sp.*, ROW_NUMBER() OVER (
             PARTITION BY feed, offer_id, price_class, provider, gpu_model, bloc, peer
             ORDER BY t DESC) AS rn
    FROM spans sp, latest WHERE sp.t_end > latest.now) x
  WHERE rn = 1
),
own_cells AS (SELECT DISTINCT provider, gpu_model, price_class FROM standing WHERE NOT peer),
counted AS (
  SELECT s.* FROM standing s
  LEFT JOIN own_cells c ON s.peer AND c.provider = s.provider
       AND c.gpu_model = s.gpu_model AND c.price_class = s.price_class
  WHERE c.provider IS NULL
)
SELECT gpu_model, bloc, price_class, provider, COUNT(*) AS offers,
       quantile_cont(v, 0.5) AS median_usd_per_gpu_hour,
       strftime(make_timestamp(MAX(t) * 1000), '%Y-%m-%dT%H:%MZ') AS observed_at_utc,
       (ANY_VALUE(latest.now) - MAX(t)) / 3600000.0 AS age_hours
FROM counted, latest
GROUP BY gpu_model, bloc, price_class, provider
ORDER BY gpu_model, bloc, price_class, provider
"""


def connect(store):
    con, d = duckdb_connect()
    con.execute(f"CREATE VIEW offers AS SELECT * FROM read_parquet("
                f"'{store}/offers/*/*.parquet', hive_partitioning = true, union_by_name = true)")
    return con, d


def report(con, store, week):
    p, validity = weekly.params(week, ROOT / "tables", 0.1, 10.0)
    con.execute(f"CREATE VIEW validity AS {weekly.validity_sql(validity)}")
    return weekly.COLUMNS, con.execute(weekly.sql_text(p))


def history(con, store, model):
    return None, con.execute(HISTORY_SQL, {"model": model})


def prices_params(store):
    """The last stored date and the scan start (analysis::inforce::scan_start)."""
    dates = sorted(p.name[5:] for p in (pathlib.Path(store) / "offers").glob("date=*"))
    last = dt.date.fromisoformat(dates[-1])
    with open(ROOT / "tables" / "providers.toml", "rb") as f:
        t = tomllib.load(f)
    default = float(t["defaults"]["list_price_hours"])
    validity = [(p, e.get("valid_hours")) for p, e in sorted(t["providers"].items())]
    longest = max([default] + [float(v) for _, v in validity if v is not None])
    back = (dt.datetime.combine(last, dt.time()) - dt.timedelta(hours=longest)).date()
    scan_from = back - dt.timedelta(days=back.weekday())
    return {"last": last.isoformat(), "scan_from": scan_from.isoformat(),
            "default_valid_hours": repr(default)}, validity


def prices(con, store, _arg):
    p, validity = prices_params(store)
    con.execute(f"CREATE VIEW validity AS {weekly.validity_sql(validity)}")
    text = PRICES_SQL
    for k, v in p.items():
        text = text.replace("${" + k + "}", v)
    return None, con.execute(text)


if __name__ == "__main__":
    store, op = sys.argv[1], sys.argv[2]
    arg = sys.argv[3] if len(sys.argv) > 3 else None
    con, d = connect(store)
    columns, cur = {"report": report, "history": history, "prices": prices}[op](con, store, arg)
    rows = [list(r) for r in cur.fetchall()]
    columns = columns or [c[0] for c in cur.description]
    print(json.dumps({"engine": "duckdb " + d.__version__, "op": op,
                      "columns": columns, "rows": rows}), flush=True)
