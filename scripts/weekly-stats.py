#!/usr/bin/env python3
"""Run sql/weekly_stats.sql (gpurent's weekly statistics) on Spark and/or DuckDB.

Usage: weekly-stats.py STORE YYYY-Www [spark|duckdb ...] [--tables DIR]
         [--low 0.1] [--high 10]
STORE is a local directory or, for DuckDB with httpfs / Spark with s3a, a URL.
Prints one JSON object per engine: {"engine", "rows": [...]} with the columns of the
SQL's result (gpu_model, bloc, price_class, offers, providers, min, p10, p25, median,
p75, p90, provider_median, provider_median_ex_vat), comparable with `rows` in the
week's summary.json. The SQL is the same text for both engines.
"""
import argparse
import datetime as dt
import json
import pathlib
import sys
import tomllib

sys.dont_write_bytecode = True  # no __pycache__ beside the scripts
from engines_common import duckdb_connect, spark_session  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
COLUMNS = ["gpu_model", "bloc", "price_class", "offers", "providers", "min", "p10",
           "p25", "median", "p75", "p90", "provider_median", "provider_median_ex_vat"]


def params(week, tables, low, high):
    year, w = week.split("-W")
    monday = dt.date.fromisocalendar(int(year), int(w), 1)
    with open(pathlib.Path(tables) / "providers.toml", "rb") as f:
        t = tomllib.load(f)
    default = float(t["defaults"]["list_price_hours"])
    validity = [(p, e.get("valid_hours")) for p, e in sorted(t["providers"].items())]
    longest = max([default] + [float(v) for _, v in validity if v is not None])
    back = (dt.datetime.combine(monday, dt.time()) - dt.timedelta(hours=longest)).date()
    scan_from = back - dt.timedelta(days=back.weekday())
    p = {"from": monday.isoformat(), "to": (monday + dt.timedelta(days=6)).isoformat(),
         "scan_from": scan_from.isoformat(), "low": repr(low), "high": repr(high),
         "default_valid_hours": repr(default)}
    return p, validity


def sql_text(p):
    text = (ROOT / "sql" / "weekly_stats.sql").read_text()
    for k, v in p.items():
        text = text.replace("${" + k + "}", v)
    return text


def validity_sql(validity):
    rows = ", ".join(
        f"('{p}', {'CAST(NULL AS DOUBLE)' if v is None else f'CAST({float(v)!r} AS DOUBLE)'})"
        for p, v in validity)
    return f"SELECT * FROM (VALUES {rows}) AS t(provider, valid_hours)"


def spark(store, text, validity):
    s = spark_session()
    s.read.option("mergeSchema", "true").parquet(f"{store}/offers").createOrReplaceTempView("offers")
    s.sql(validity_sql(validity)).createOrReplaceTempView("validity")
    rows = [[r[c] for c in COLUMNS] for r in s.sql(text).collect()]
    out = {"engine": "spark " + s.version, "rows": rows}
    s.stop()
    return out


def duckdb(store, text, validity):
    con, d = duckdb_connect()
    con.execute(f"CREATE VIEW offers AS SELECT * FROM read_parquet("
                f"'{store}/offers/*/*.parquet', hive_partitioning = true, union_by_name = true)")
    con.execute(f"CREATE VIEW validity AS {validity_sql(validity)}")
    rows = [list(r) for r in con.execute(text).fetchall()]
    return {"engine": "duckdb " + d.__version__, "rows": rows}


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("store")
    ap.add_argument("week")
    ap.add_argument("engines", nargs="*", default=["spark", "duckdb"])
    ap.add_argument("--tables", default=str(ROOT / "tables"))
    ap.add_argument("--low", type=float, default=0.1)
    ap.add_argument("--high", type=float, default=10.0)
    a = ap.parse_args()
    p, validity = params(a.week, a.tables, a.low, a.high)
    text = sql_text(p)
    for engine in a.engines:
        out = {"spark": spark, "duckdb": duckdb}[engine](a.store, text, validity)
        out["columns"] = COLUMNS
        print(json.dumps(out), flush=True)
