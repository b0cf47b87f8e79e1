#!/usr/bin/env bash
# A/B of `gpurent ingest` between binaries, runs alternating (VM noise is about
# ±10 % per run, so only alternating medians compare two builds).
# Usage: scripts/ingest-ab.sh N FEEDS label:BIN [label:BIN ...]
#   FEEDS: a feeds folder, e.g. the scale bench's `<bench dir>/ingest/feeds` (its
#   SIMULATED 300,000-offer vast.ai payload). Each run ingests into a fresh store in
#   $TMPDIR; prints each binary's median task-clock (all threads, perf stat) and its
#   largest peak RSS (/usr/bin/time). Needs perf.
set -euo pipefail
n=${1:?usage: scripts/ingest-ab.sh N FEEDS label:BIN ...}
feeds=${2:?usage: scripts/ingest-ab.sh N FEEDS label:BIN ...}
shift 2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for _ in $(seq 1 "$n"); do
  for lb in "$@"; do
    label=${lb%%:*} bin=${lb#*:}
    rm -rf "$work/store"
    out=$(perf stat -x, -e task-clock /usr/bin/time -f "RSS %M" \
      "$bin" ingest --feeds "$feeds" --store "$work/store" --at 2026-12-01T00:00:00Z 2>&1 >/dev/null)
    echo "$label $(echo "$out" | grep task-clock | cut -d, -f1) $(echo "$out" | awk '/^RSS/ {print $2}')" >> "$work/runs"
  done
done
for lb in "$@"; do
  label=${lb%%:*}
  awk -v l="$label" '$1 == l {print $2, $3}' "$work/runs" | sort -n | awk -v l="$label" \
    '{t[NR] = $1; if ($2 > r) r = $2} END {printf "%-12s median task-clock %8.1f ms  max peak RSS %d KiB  (%d runs)\n", l, t[int((NR + 1) / 2)], r, NR}'
done
