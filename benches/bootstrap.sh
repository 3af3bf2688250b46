#!/usr/bin/env bash
# The Lambda functions' size and start-up, measured (not asserted):
#   * each arm64 bootstrap's size, built one package at a time as `sam build` does
#     (`cargo lambda build --release --arm64 -p <function>`, so each links only its own
#     features), skipped with a message when the aarch64 target cannot be installed;
#   * each function's init time: process start to its first request for work
#     (`GET /2018-06-01/runtime/invocation/next`) from a local stand-in of the Lambda Runtime
#     API — the x86_64 release build of the same code (this machine cannot run arm64), best of
#     five starts.
# Prints a table, then one line per function:
#   bootstrap <function>: <arm64 bytes> bytes arm64, init <ms> ms (x86_64)
set -euo pipefail
cd "$(dirname "$0")/.."
FUNCTIONS=(coordinator worker writer)
declare -A SIZE INIT

if command -v cargo-lambda >/dev/null 2>&1 || [ -x .venv/bin/cargo-lambda ]; then
  export PATH="$PWD/.venv/bin:$PATH"
  if rustup target list --installed 2>/dev/null | grep -q '^aarch64-unknown-linux-gnu$' \
    || rustup target add aarch64-unknown-linux-gnu >/dev/null 2>&1; then
    for f in "${FUNCTIONS[@]}"; do
      cargo lambda build --release --arm64 -p "$f" --quiet >/dev/null
      SIZE[$f]=$(stat -c %s "target/lambda/$f/bootstrap")
    done
  else
    echo "arm64 sizes: skipped (the aarch64-unknown-linux-gnu target cannot be installed here)"
  fi
else
  echo "arm64 sizes: skipped (cargo-lambda is not installed: bash scripts/test.sh installs it into .venv)"
fi

# The Runtime API stand-in: answers the first `next` with an event, prints the time (epoch
# seconds) of that first request, and exits.
runtime_api() {
  python3 - "$1" <<'PY'
import http.server, json, sys, time
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_GET(self):
        if self.path.endswith("/invocation/next"):
            print(f"{time.time():.6f}", flush=True)
            body = json.dumps({"action": "describe", "name": "none"}).encode()
            self.send_response(200)
            self.send_header("Lambda-Runtime-Aws-Request-Id", "init-probe")
            self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 60000))
            self.send_header("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:probe")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
server = http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H)
server.served = False
H.do_GET_inner = H.do_GET
def do_get(self):
    H.do_GET_inner(self)
    if self.path.endswith("/invocation/next"):
        server.served = True
H.do_GET = do_get
# Connections that only check the port is open are handled too; the first `next` ends it.
while not server.served:
    server.handle_request()
PY
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

listening() {
  python3 -c "import socket,sys; s=socket.socket(); sys.exit(s.connect_ex(('127.0.0.1',$1)))"
}

for f in "${FUNCTIONS[@]}"; do
  cargo build --release --quiet -p "$f"
  best=""
  for _ in 1 2 3 4 5; do
    port=$(free_port)
    out=$(mktemp)
    runtime_api "$port" >"$out" &
    api=$!
    until listening "$port"; do sleep 0.05; done
    t0=$(date +%s.%N)
    env -i PATH="$PATH" AWS_LAMBDA_RUNTIME_API="127.0.0.1:$port" AWS_LAMBDA_FUNCTION_NAME="$f" \
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE=1769 AWS_LAMBDA_FUNCTION_VERSION='$LATEST' \
      AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x AWS_EC2_METADATA_DISABLED=true \
      MAPFLEET_TABLE=probe MAPFLEET_WORKER_FUNCTION=worker MAPFLEET_STATE_BUCKET=probe \
      "target/release/$f" >/dev/null 2>&1 &
    fn=$!
    # A function that exits before asking for work (a missing setting) ends the wait too.
    while kill -0 "$api" 2>/dev/null && kill -0 "$fn" 2>/dev/null; do sleep 0.01; done
    if ! kill -0 "$fn" 2>/dev/null && kill -0 "$api" 2>/dev/null; then
      echo "$f exited before asking for work (run target/release/$f to see why)" >&2
      kill "$api" 2>/dev/null || true
    fi
    wait "$api" 2>/dev/null || true
    kill "$fn" 2>/dev/null || true
    wait "$fn" 2>/dev/null || true
    t1=$(cat "$out")
    rm -f "$out"
    if [ -n "$t1" ]; then
      ms=$(python3 -c "print(f'{($t1 - $t0) * 1000:.1f}')")
      if [ -z "$best" ] || python3 -c "import sys; sys.exit(0 if $ms < $best else 1)"; then
        best=$ms
      fi
    fi
  done
  INIT[$f]=$best
done

printf '| function | arm64 bootstrap | init (x86_64, best of 5) |\n|---|---|---|\n'
for f in "${FUNCTIONS[@]}"; do
  size=${SIZE[$f]:+${SIZE[$f]} bytes}
  printf '| %s | %s | %s ms |\n' "$f" "${size:-skipped}" "${INIT[$f]:-?}"
done
for f in "${FUNCTIONS[@]}"; do
  size=${SIZE[$f]:+${SIZE[$f]} bytes}
  echo "bootstrap $f: ${size:-skipped} arm64, init ${INIT[$f]:-?} ms (x86_64)"
done
