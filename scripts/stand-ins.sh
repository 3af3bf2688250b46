#!/usr/bin/env bash
# Real local stand-ins for AWS, for the fleet tests (moto server and cargo lambda watch, installed into .venv):
#   moto server        S3, DynamoDB, Step Functions (and a Lambda API for parent machines)
#   cargo lambda watch the Lambda Invoke API running our own coordinator/worker/writer
# Sourced by scripts/test.sh. Installs its tools into .venv (pinned), starts both servers on
# free ports, exports their endpoints, and stops them by PID when the sourcing shell exits.

VENV="${MAPFLEET_VENV:-$PWD/.venv}"
PINS=("moto[server]==5.2.5" "cargo-lambda==1.9.2" "aws-sam-cli==1.170.0" "cfn-lint==1.58.0")

stand_ins_install() {
  if [ ! -x "$VENV/bin/moto_server" ] || [ ! -x "$VENV/bin/cargo-lambda" ] || [ ! -x "$VENV/bin/sam" ]; then
    echo "== installing the stand-ins into $VENV (${PINS[*]})"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check --no-cache-dir "${PINS[@]}"
  fi
  export PATH="$VENV/bin:$PATH"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_http() { # url seconds
  local deadline=$((SECONDS + $2))
  until curl -sS -o /dev/null "$1" 2>/dev/null; do
    if [ $SECONDS -ge $deadline ]; then echo "timed out waiting for $1" >&2; return 1; fi
    sleep 0.2
  done
}

STAND_IN_PIDS=()
stand_ins_stop() {
  for pid in "${STAND_IN_PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${STAND_IN_PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  STAND_IN_PIDS=()
}

stand_ins_start() {
  stand_ins_install
  export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_SESSION_TOKEN=testing
  export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
  local logs="${MAPFLEET_STAND_IN_LOGS:-$PWD/target/stand-ins}"
  mkdir -p "$logs"

  MOTO_PORT=$(free_port)
  # MOTO_PORT: moto's own Step Functions interpreter calls back into this server.
  MOTO_PORT=$MOTO_PORT moto_server -H 127.0.0.1 -p "$MOTO_PORT" >"$logs/moto.log" 2>&1 &
  STAND_IN_PIDS+=($!)
  export MAPFLEET_MOTO_ENDPOINT="http://127.0.0.1:$MOTO_PORT"
  # moto's request log: a test counts the requests a run made (tests/fleet_scale.rs).
  export MAPFLEET_MOTO_LOG="$logs/moto.log"
  wait_http "$MAPFLEET_MOTO_ENDPOINT/moto-api/data.json" 30
  # Parent state machines run (the fleet test that needs moto's Lambda to echo switches that on
  # for itself: it would hide missing functions from the other tests).
  curl -fsS -X POST "$MAPFLEET_MOTO_ENDPOINT/moto-api/config" \
    -H 'Content-Type: application/json' \
    -d '{"stepfunctions": {"execute_state_machine": true}}' >/dev/null

  LAMBDA_PORT=$(free_port)
  export MAPFLEET_LAMBDA_ENDPOINT="http://127.0.0.1:$LAMBDA_PORT"
  export MAPFLEET_TEST_TABLE="${MAPFLEET_TEST_TABLE:-mapfleet-fleet-test}"
  export MAPFLEET_TEST_STATE_BUCKET="${MAPFLEET_TEST_STATE_BUCKET:-mapfleet-fleet-state}"
  # The functions' fleet settings, exported: tests read them too.
  export MAPFLEET_WORKER_CONCURRENCY="${MAPFLEET_WORKER_CONCURRENCY:-4}"
  export MAPFLEET_CHILDREN_PER_INVOKE="${MAPFLEET_CHILDREN_PER_INVOKE:-50}"
  # The functions' environment: AWS is moto, Lambda is cargo lambda watch itself.
  cargo lambda watch --invoke-address 127.0.0.1 --invoke-port "$LAMBDA_PORT" --ignore-changes \
    --concurrency 8 --timeout 900 \
    --env-var AWS_ENDPOINT_URL="$MAPFLEET_MOTO_ENDPOINT" \
    --env-var AWS_ENDPOINT_URL_LAMBDA="$MAPFLEET_LAMBDA_ENDPOINT" \
    --env-var AWS_ACCESS_KEY_ID=testing --env-var AWS_SECRET_ACCESS_KEY=testing \
    --env-var AWS_REGION=us-east-1 --env-var AWS_EC2_METADATA_DISABLED=true \
    --env-var MAPFLEET_TABLE="$MAPFLEET_TEST_TABLE" \
    --env-var MAPFLEET_STATE_BUCKET="$MAPFLEET_TEST_STATE_BUCKET" \
    --env-var MAPFLEET_WORKER_FUNCTION=worker --env-var MAPFLEET_WRITER_FUNCTION=writer \
    --env-var MAPFLEET_COORDINATOR_FUNCTION=coordinator \
    --env-var MAPFLEET_ASYNC_ACK=background \
    --env-var MAPFLEET_WORKER_CONCURRENCY="$MAPFLEET_WORKER_CONCURRENCY" \
    --env-var MAPFLEET_CHILDREN_PER_INVOKE="$MAPFLEET_CHILDREN_PER_INVOKE" \
    --env-var MAPFLEET_LAMBDA_BARE_NAMES=true \
    --env-var MAPFLEET_DEFAULT_JOB=s3://mapfleet-demo/jobs/nightly.json \
    --env-var RUST_LOG=info \
    >"$logs/cargo-lambda.log" 2>&1 &
  STAND_IN_PIDS+=($!)
  wait_http "$MAPFLEET_LAMBDA_ENDPOINT/" 120 || { tail -20 "$logs/cargo-lambda.log" >&2; return 1; }
  echo "== stand-ins: moto $MAPFLEET_MOTO_ENDPOINT, cargo lambda watch $MAPFLEET_LAMBDA_ENDPOINT (logs in $logs)"
}
