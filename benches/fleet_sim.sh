#!/usr/bin/env bash
# The metered fleet simulation (not a CI test; its 10,000-child slice is `cargo test -p
# mapfleet-aws --features sim --test fleet_sim`, run by scripts/test.sh):
#   bash benches/fleet_sim.sh [CHILDREN] [--standard] [--budget SECONDS] [--workers N]
#        [--per-invoke N] [--fault-rate R] [--seed N] [--sleep] [--dir DIR]
# The real coordinator, worker and writer code runs CHILDREN one-item children (default
# 1,000,000; a Choice and a Pass state each, MaxConcurrency 1,000, the template's defaults)
# over metered stand-ins for S3 (a local folder), DynamoDB (in memory) and Lambda (in process),
# continuing in a new coordinator invocation every budget (default 20 s). It prints requests
# and billed units per million children, dollars beside Step Functions Express and Standard,
# the process's peak memory, each continuation's reload time, and last:
#   fleet simulation: N children, $X per million children (P% of Express), C children/s
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p mapfleet-aws --features sim --example fleet_sim
exec target/release/examples/fleet_sim "$@"
