"""What the engine scripts share: a local Spark session and a DuckDB connection set up
the same way (UTC, 2 threads, loopback only), for engines-read.py and weekly-stats.py."""


def spark_session():
    """PySpark in local mode on 2 cores, session time zone UTC, no UI, quiet."""
    from pyspark.sql import SparkSession

    s = (
        SparkSession.builder.master("local[2]")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .getOrCreate()
    )
    s.sparkContext.setLogLevel("ERROR")
    return s


def duckdb_connect():
    """A DuckDB connection on 2 threads in UTC, and the module (for its version)."""
    import duckdb as d

    con = d.connect()
    con.execute("SET threads = 2")
    con.execute("SET TimeZone = 'UTC'")
    return con, d
