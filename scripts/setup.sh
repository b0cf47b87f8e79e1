#!/usr/bin/env bash
# Installs what the test suite needs beyond the Rust toolchain: Debian's Chromium, for
# the test that renders a report page headless. Safe to run again; needs root for apt.
set -euo pipefail
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "setup: chromium not installed and cannot apt-get it; the page-render test will skip" >&2
  fi
fi
# PySpark + DuckDB (and OpenJDK 17) for the test that reads the store with real engines.
bash "$(dirname "$0")/engines.sh"
