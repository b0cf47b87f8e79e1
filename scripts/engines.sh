#!/usr/bin/env bash
# Installs the engines the "any engine can read it" test runs: PySpark 4 and DuckDB from
# PyPI in a venv at /var/tmp/gpurent-engines (or $GPURENT_ENGINES_VENV), and Debian's
# OpenJDK 17 for Spark when `java` is missing. Safe to run again; apt needs root.
# DuckDB reads S3 through its httpfs extension, which PyPI has up to DuckDB 1.5.5 (not
# for 2.0), so a second venv (/var/tmp/gpurent-duckdb-s3) holds duckdb 1.5.5 with the
# duckdb-extension-httpfs wheel: no download from extensions.duckdb.org at run time.
set -euo pipefail
venv="${GPURENT_ENGINES_VENV:-/var/tmp/gpurent-engines}"
if ! command -v java >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null
  else
    echo "engines: java missing and cannot apt-get it; the engines test will skip" >&2
    exit 0
  fi
fi
# A venv at $1 with the packages $2...; Debian's python3 needs python3-venv for it.
make_venv() {
  local dir="$1"; shift
  if ! python3 -m venv "$dir" 2>/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
      rm -rf "$dir"
      python3 -m venv "$dir"
    else
      echo "engines: python3 -m venv failed (install python3-venv); the engines tests will skip" >&2
      exit 0
    fi
  fi
  "$dir/bin/pip" install -q "$@"
}
if ! "$venv/bin/python" -c 'import pyspark, duckdb' 2>/dev/null; then
  make_venv "$venv" 'pyspark==4.0.1' 'duckdb==2.0.1'
fi
s3venv="${GPURENT_DUCKDB_S3_VENV:-/var/tmp/gpurent-duckdb-s3}"
if ! "$s3venv/bin/python" -c 'import duckdb, duckdb_extension_httpfs' 2>/dev/null; then
  make_venv "$s3venv" 'duckdb==1.5.5' 'duckdb-extension-httpfs==1.5.5'
fi
