#!/usr/bin/env python3
"""Are two stores' rows the same, in the same order? For a change that must not move a
stored value (a faster ingest, a refactor): ingest or back-fill the same input with the
old and the new binary, then compare.

Usage: compare-stores.py [--any-order] STORE_A STORE_B
Reads every `offers/**/*.parquet` and `rejects/**/*.parquet` of each store with DuckDB
(files in path order, rows in file order), numbers the rows and counts the rows of
each side missing from the other (`except all`), so a value, a row or the order that
differs is counted. With `--any-order` the rows are not numbered, so two stores that
hold the same rows in another order (hourly files against their compacted days, which
are sorted by model) compare equal. Prints one line per kind; exits 1 if anything
differs.
Needs the `duckdb` package (scripts/engines.sh installs it in its venv).
"""
import sys

import duckdb


def read(store, kind, numbered):
    row_no = "row_number() over () as row_no, " if numbered else ""
    return (f"select {row_no}* from read_parquet("
            f"'{store}/{kind}/**/*.parquet', hive_partitioning = false)")


def count(con, query):
    """The query's rows, or None when the store has no such files."""
    try:
        return con.execute(f"select count(*) from ({query})").fetchone()[0]
    except duckdb.IOException:
        return None


def compare(con, a, b, kind, numbered):
    qa, qb = read(a, kind, numbered), read(b, kind, numbered)
    n = [count(con, q) for q in (qa, qb)]
    if None in n:
        same = n == [None, None]
        return f"{kind}: no files in {'either store' if same else 'one store'}", same
    only_a = con.execute(f"select count(*) from (({qa}) except all ({qb}))").fetchone()[0]
    only_b = con.execute(f"select count(*) from (({qb}) except all ({qa}))").fetchone()[0]
    same_schema = con.execute(f"describe ({qa})").fetchall() == con.execute(
        f"describe ({qb})").fetchall()
    ok = only_a == 0 and only_b == 0 and same_schema
    return (f"{kind}: {n[0]} and {n[1]} rows; {only_a} only in A, {only_b} only in B "
            f"({'row number included' if numbered else 'any order'}); same schema: {same_schema}"), ok


def main():
    args = sys.argv[1:]
    numbered = "--any-order" not in args
    args = [a for a in args if a != "--any-order"]
    if len(args) != 2:
        sys.exit(__doc__)
    con = duckdb.connect()
    results = [compare(con, *args, k, numbered) for k in ("offers", "rejects")]
    for line, _ in results:
        print(line)
    sys.exit(0 if all(ok for _, ok in results) else 1)


if __name__ == "__main__":
    main()
