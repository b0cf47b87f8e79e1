#!/usr/bin/env bash
# Back-fills the real public data in ../shared/data (ECB rates, every SkyPilot and
# seedling catalogue, the Alibaba and AWS 2023 lists, Tencent 2016-2021, the 2026
# tracker, the 2025-2026 China quotes) into a store, then writes the weekly reports asked for, so a change to the
# method can be judged on real weeks (2023-W24 has both Alibaba and AWS).
# Usage: scripts/real-report.sh STORE OUT [WEEK...]   (default week 2023-W24)
# GPURENT_BIN names the binary (default: target/release/gpurent, built if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
store=${1:?usage: scripts/real-report.sh STORE OUT [WEEK...]}
out=${2:?usage: scripts/real-report.sh STORE OUT [WEEK...]}
shift 2
weeks=("${@:-2023-W24}")
d=../shared/data
test -f "$d/README.md" || { echo "real-report: $d not found" >&2; exit 2; }
bin=${GPURENT_BIN:-${CARGO_TARGET_DIR:-target}/release/gpurent}
[ -x "$bin" ] || cargo build --release --locked
g() { "$bin" "$@" | tail -1; }
g backfill --format ecb_fx --provider ecb --at 2024-10-11 --store "$store" "$d/ecb-fx/eurofxref-hist.csv"
g backfill --format ecb_fx --provider ecb --at 2026-10-30 --store "$store" "$d/ecb-fx/eurofxref-hist-2026-10-30.csv"
g backfill --format skypilot_csv --store "$store" "$d"/skypilot-catalog/* "$d"/seedling-catalog/*
g backfill --feed feeds/backfill/alibaba-2023.toml --at 2023-06-17 --store "$store" \
  "$d/arthurchiao-gpu-prices-2023/alibaba_cn-shanghai_gpu_prices_cny.csv"
g backfill --feed feeds/backfill/aws-2023-arthurchiao.toml --at 2023-06-17 --store "$store" \
  "$d/arthurchiao-gpu-prices-2023/aws_gpu_prices_usd.csv"
g backfill --feed feeds/backfill/tencent-docs.toml --store "$store" "$d/tencent-cloud-docs/gpu-price-overview"
g backfill --feed feeds/backfill/gpu-pricing-tracker-2026.toml --at 2026-07-21 --store "$store" \
  "$d/gpu-pricing-tracker-2026/observations.csv"
g backfill --feed feeds/backfill/cn-rental-quotes.toml --at 2026-12-01 --store "$store" \
  "$d/cn-rental-quotes/quotes.csv"
for w in "${weeks[@]}"; do "$bin" report --store "$store" --out "$out" --week "$w"; done
