#!/usr/bin/env bash
# The whole test suite, from a fresh clone: builds, starts the local AWS stand-ins (moto server
# and cargo lambda watch, installed into .venv from PyPI), runs unit tests, the conformance
# corpus (tests/conformance), the CLI and Distributed Map end-to-end checks, the fleet
# end-to-end tests, and the SAM template checks. Servers are stopped by PID on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is required (https://rustup.rs)" >&2
  exit 2
fi
if ! command -v python3 >/dev/null 2>&1; then
  echo "python3 is required (for moto server, cargo-lambda and the SAM CLI)" >&2
  exit 2
fi

# A one-shot build: incremental caches would only add ~1 GB of disk.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

# Disk: the build, the stand-ins (.venv ~0.9 GB) and `sam build` need about 5 GB together.
disk_report() {
  local avail_kb
  avail_kb=$(df -Pk . | awk 'NR==2 {print $4}')
  echo "   disk: $((avail_kb / 1024)) MB free here ($1)"
  if [ "$avail_kb" -lt $((2 * 1024 * 1024)) ]; then
    echo "   warning: under 2 GB free; the build or the stand-ins' install may fail with ENOSPC" >&2
  fi
}
disk_report "start"

# shellcheck source=scripts/stand-ins.sh
source scripts/stand-ins.sh
trap stand_ins_stop EXIT

echo "== build"
cargo build --workspace --all-targets --quiet
disk_report "after the build"

echo "== stand-ins"
stand_ins_start

echo "== unit, integration, CLI, Distributed Map, fleet end-to-end and conformance tests"
cargo test --workspace

echo "== fleet simulation, quick slice (the full one: bash benches/fleet_sim.sh)"
cargo test -p mapfleet-aws --features sim --test fleet_sim -- --nocapture --test-threads 1

disk_report "after the tests"

echo "== SAM template"
sam validate --lint --region us-east-1
cfn-lint template.yaml

# `sam build` cross-compiles the three functions for arm64 (cargo lambda + zig); it needs the
# aarch64 standard library, which a machine may not be allowed to fetch.
if [ "${MAPFLEET_SKIP_SAM_BUILD:-}" = "1" ]; then
  echo "== sam build: skipped (MAPFLEET_SKIP_SAM_BUILD=1)"
elif rustup target list --installed 2>/dev/null | grep -q '^aarch64-unknown-linux-gnu$' \
  || rustup target add aarch64-unknown-linux-gnu >/dev/null 2>&1; then
  echo "== sam build (arm64)"
  # The arm64 release build takes about 4 GB more; on a tight disk the (finished) test build
  # makes room for it.
  if [ "$(df -Pk . | awk 'NR==2 {print $4}')" -lt $((6 * 1024 * 1024)) ]; then
    echo "   under 6 GB free: removing the debug build (the tests are done) to make room"
    rm -rf "${CARGO_TARGET_DIR:-target}/debug"
  fi
  sam build --build-dir target/sam-build --cached --parallel
  disk_report "after sam build"
else
  echo "== sam build: skipped: the aarch64-unknown-linux-gnu target cannot be installed here"
fi
