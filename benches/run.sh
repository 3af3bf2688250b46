#!/usr/bin/env bash
# Benchmarks, with ratios against baselines measured in the same process.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench --bench workload -- "${1:-100000}"
