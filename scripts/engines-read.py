#!/usr/bin/env python3
"""Read a gpurent store with real engines, as an analyst would, and print what they see.

Usage: engines-read.py STORE [spark|duckdb|duckdb-s3 ...]
STORE is a directory, or for duckdb-s3 an s3://bucket/prefix URL read with the AWS_*
variables (AWS_ENDPOINT_URL for a self-hosted server, path-style, through the httpfs
extension from PyPI).
Prints one JSON object per engine: rows read, the type the engine gives the `date`
partition and `observed_at`, and per date the row count and the sum of
usd_per_gpu_hour (so a caller can compare them with gpurent's own reading).
Spark runs in local mode (Debian's OpenJDK 17, PySpark from PyPI); DuckDB from PyPI.
"""
import json
import sys

sys.dont_write_bytecode = True  # no __pycache__ beside the scripts
from engines_common import duckdb_connect, spark_session  # noqa: E402


def spark(store):
    s = spark_session()
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
    con, d = duckdb_connect()
    return duckdb_read(con, d.__version__, store)


def duckdb_read(con, version, store):
    rel = f"read_parquet('{store}/offers/*/*.parquet', hive_partitioning = true)"
    types = {r[0]: r[1] for r in con.execute(f"DESCRIBE SELECT * FROM {rel}").fetchall()}
    rows = con.execute(
        f"SELECT CAST(date AS VARCHAR) AS d, COUNT(*), SUM(usd_per_gpu_hour) FROM {rel} "
        "GROUP BY date ORDER BY d"
    ).fetchall()
    return {
        "engine": "duckdb " + version,
        "date_type": types["date"],
        "observed_at_type": types["observed_at"],
        "per_date": [list(r) for r in rows],
    }


def duckdb_s3(store):
    import os

    import duckdb_extension_httpfs as h

    con, d = duckdb_connect()
    ext = os.path.join(os.path.dirname(h.__file__), "extensions", "v" + d.__version__,
                       "httpfs.duckdb_extension")
    con.execute(f"LOAD '{ext}'")
    endpoint = os.environ.get("AWS_ENDPOINT_URL", "")
    opts = [f"KEY_ID '{os.environ['AWS_ACCESS_KEY_ID']}'",
            f"SECRET '{os.environ['AWS_SECRET_ACCESS_KEY']}'",
            f"REGION '{os.environ.get('AWS_REGION', 'us-east-1')}'"]
    if endpoint:
        host = endpoint.split("://", 1)[-1].rstrip("/")
        opts += [f"ENDPOINT '{host}'", "URL_STYLE 'path'",
                 f"USE_SSL {'false' if endpoint.startswith('http://') else 'true'}"]
    con.execute(f"CREATE SECRET (TYPE s3, {', '.join(opts)})")
    out = duckdb_read(con, d.__version__, store)
    out["engine"] += " over S3"
    return out


if __name__ == "__main__":
    store = sys.argv[1]
    for engine in sys.argv[2:] or ["spark", "duckdb"]:
        engines = {"spark": spark, "duckdb": duckdb, "duckdb-s3": duckdb_s3}
        print(json.dumps(engines[engine](store)), flush=True)
