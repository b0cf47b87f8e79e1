#!/usr/bin/env bash
# The test command (README.md). One cargo profile (release) serves the tests, the demo
# and the benches, so dependencies are compiled once.
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo test --release --locked "$@"
