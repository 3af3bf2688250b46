#!/usr/bin/env bash
# The 1M-row CSV Distributed Map job end to end (read → ItemSelector → Choice/Pass children →
# ResultWriter) on the embedded default, against a floor measured in the same run (CSV parse +
# JSON build + write of the same result records, and a lighter one writing only the shaped rows),
# with peak RSS at N and at N/10 rows to show it is flat. Each timing is the best of two runs.
#   bash benches/csv_job.sh [ROWS]   (default 1000000)
set -euo pipefail
cd "$(dirname "$0")/.."
rows="${1:-1000000}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cargo build --release -p mapfleet --quiet
cargo bench --bench csv_floor --no-run --quiet 2>/dev/null || true
bin="${CARGO_TARGET_DIR:-target}/release/mapfleet"

gen() { python3 examples/csv-orders/gen.py "$work/data-$1" "$1" > /dev/null; }

run_job() { # ROWS → "seconds rss_kb"
  local n="$1" data="$work/data-$1"
  rm -rf "$work/state-$n" "$data/demo/results"
  sync # no writeback of earlier runs' files during this one
  # Wall time and the child's peak RSS (kB), measured by Python so no extra tool is needed.
  python3 - "$work/time" "$bin" run examples/csv-orders/csv-orders.asl.json \
      --data "$data" --state "$work/state-$n" > "$work/out-$n.json" <<'PY'
import resource, subprocess, sys, time
t = time.perf_counter()
subprocess.run(sys.argv[2:], check=True)
dt = time.perf_counter() - t
with open(sys.argv[1], "w") as f:
    f.write(f"{dt:.3f} {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}\n")
PY
  grep -q '"status":"SUCCEEDED"' "$work/out-$n.json" || { cat "$work/out-$n.json"; exit 1; }
  cat "$work/time"
}

run_floor() { # → "records_seconds rows_seconds"
  rm -f "$work/floor.json"
  sync
  local out
  out=$(cargo bench --bench csv_floor --quiet -- "$work/data-$rows/demo/orders.csv" "$work/floor.json" | grep csv_floor)
  echo "$(echo "$out" | grep 'floor=records' | sed -E 's/.*seconds=([0-9.]+).*/\1/') $(echo "$out" | grep 'floor=rows' | sed -E 's/.*seconds=([0-9.]+).*/\1/')"
}

# The machine is shared and a run right after another one can be slowed by it (writeback,
# page reclaim): the job and the floor each run twice, interleaved, and the best of each counts.
small=$((rows / 10))
gen "$small"
gen "$rows"
read -r f1_records f1_rows < <(run_floor)
read -r t_small rss_small < <(run_job "$small")
read -r t1 rss1 < <(run_job "$rows")
read -r f2_records f2_rows < <(run_floor)
read -r t2 rss2 < <(run_job "$rows")
out_bytes=$(find "$work/data-$rows/demo/results" -name 'SUCCEEDED_*.json' -printf '%s\n' | awk '{s+=$1} END {print s}')
python3 - "$rows" "$t1" "$t2" "$f1_records" "$f2_records" "$f1_rows" "$f2_rows" "$small" "$rss_small" "$rss1" "$rss2" "$out_bytes" <<'PY'
import sys
a = sys.argv[1:]
rows, small = int(a[0]), int(a[7])
t, records, floor_rows = min(float(a[1]), float(a[2])), min(float(a[3]), float(a[4])), min(float(a[5]), float(a[6]))
rss_small, rss_big, out_bytes = int(a[8]), max(int(a[9]), int(a[10])), int(a[11])
print(f"csv_job: runs seconds={a[1]},{a[2]} floor(records) seconds={a[3]},{a[4]} (best of each counts)")
print(f"csv_job: rows={rows} seconds={t:.2f} rows_per_s={rows/t:.0f} result_bytes={out_bytes}")
print(f"csv_job: floor (CSV parse + JSON build + the same result records written) seconds={records:.3f} -> ratio job/floor = {t/records:.2f}x")
print(f"csv_job: floor (CSV parse + JSON build + ~80-byte JSON lines, a tenth of the output) seconds={floor_rows:.3f} -> ratio = {t/floor_rows:.1f}x")
print(f"csv_job: peak RSS {rss_small/1024:.0f} MB at {small} rows, {rss_big/1024:.0f} MB at {rows} rows (x{rss_big/max(rss_small,1):.2f} for 10x the rows)")
PY
