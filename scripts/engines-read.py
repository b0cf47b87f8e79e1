#!/usr/bin/env python3
"""Read a gpurent store with real engines, as an analyst would, and print what they see.

Usage: engines-read.py STORE [spark|duckdb ...]
Prints one JSON object per engine: rows read, the type the engine gives the `date`
partition and `observed_at`, and per date the row count and the sum of
usd_per_gpu_hour (so a caller can compare them with gpurent's own reading).
Spark runs in local mode (Debian's OpenJDK 17, PySpark from PyPI); DuckDB from PyPI.
"""
import json
import sys


def spark(store):
    from pyspark.sql import SparkSession

    s = (
        SparkSession.builder.master("local[2]")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .getOrCreate()
    )
    s.sparkContext.setLogLevel("ERROR")
    df = s.read.parquet(f"{store}/offers")
    df.createOrReplaceTempView("offers")
    types = dict(df.dtypes)
    rows = s.sql(
        "SELECT CAST(date AS STRING) AS d, COUNT(*) AS n, SUM(usd_per_gpu_hour) AS usd "
        "FROM offers GROUP BY date ORDER BY d"
    ).collect()
    out = {
        "engine": "spark " + s.version,
        "date_type": types["date"],
        "observed_at_type": types["observed_at"],
        "per_date": [[r.d, r.n, r.usd] for r in rows],
    }
    s.stop()
    return out


def duckdb(store):
    import duckdb as d

    con = d.connect()
    con.execute("SET threads = 2")
    rel = f"read_parquet('{store}/offers/*/*.parquet', hive_partitioning = true)"
    types = {r[0]: r[1] for r in con.execute(f"DESCRIBE SELECT * FROM {rel}").fetchall()}
    rows = con.execute(
        f"SELECT CAST(date AS VARCHAR) AS d, COUNT(*), SUM(usd_per_gpu_hour) FROM {rel} "
        "GROUP BY date ORDER BY d"
    ).fetchall()
    return {
        "engine": "duckdb " + d.__version__,
        "date_type": types["date"],
        "observed_at_type": types["observed_at"],
        "per_date": [list(r) for r in rows],
    }


if __name__ == "__main__":
    store = sys.argv[1]
    for engine in sys.argv[2:] or ["spark", "duckdb"]:
        print(json.dumps({"spark": spark, "duckdb": duckdb}[engine](store)), flush=True)
