#!/usr/bin/env bash
# The long run of the seeded SIGKILL schedules (tests/kill_schedules.rs): builds the release
# binary and runs N schedules (default 200) of Distributed Map jobs killed at random moments,
# each compared with a fault-free run. Prints one line per schedule and the summary:
#   kill schedules: S schedules, K kills, L items lost, D items duplicated, M mismatched, H hangs, seed X
# Replay a failure: MAPFLEET_KILL_SEED=X MAPFLEET_KILL_ONLY=k bash scripts/kill-schedules.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export MAPFLEET_KILL_SCHEDULES="${1:-${MAPFLEET_KILL_SCHEDULES:-200}}"
cargo build --release --quiet -p mapfleet
cargo test --release --quiet --test kill_schedules -- --nocapture
