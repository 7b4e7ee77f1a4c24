#!/usr/bin/env bash
# Full password recoveries per second through the whole stack (HTTPS front-end, vault node
# with durable commits) against bare opaque-ke client+server, in one run; p50 and p99.
# BENCH_SECONDS (default 8) per measurement, BENCH_CLIENTS (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo bench -q -p coffer-client --bench recoveries
