#!/usr/bin/env bash
# The whole test suite, from a fresh clone: builds, runs unit tests, the conformance corpus
# (../shared/conformance) and the CLI end-to-end checks. Installs nothing it cannot fetch from
# the package registries; starts and stops (by PID) any server it needs.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is required (https://rustup.rs)" >&2
  exit 2
fi

echo "== build"
cargo build --workspace --all-targets --quiet

echo "== unit, integration, CLI end-to-end and conformance tests"
cargo test --workspace
