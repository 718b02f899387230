#!/usr/bin/env bash
# Property-based API test: schemathesis generates requests from the server's own OpenAPI
# document (/api/openapi.json) and checks every answer: no 5xx, the documented status codes,
# content types and headers, and bodies that match the schemas. schemathesis (pinned) is
# installed into a venv of its own, $SCHEMATHESIS_VENV (default /tmp/ci-schemathesis/venv).
#
# The server and schemathesis run in a network namespace of their own with nothing but
# loopback, so the job URLs schemathesis makes up (https://whatever.example/…) can never reach
# the network: the worker's lookups fail at once and the jobs end in `error`.
#
#   bash .ci/api-property-test.sh            # uses target/debug/focusflow (cargo test builds it)
#   FOCUSFLOW_BIN=target/release/focusflow MAX_EXAMPLES=200 bash .ci/api-property-test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
# schemathesis lives in a venv of its own: never pip into the system python (on Debian it is
# "externally managed" and pip refuses).
VENV=${SCHEMATHESIS_VENV:-/tmp/ci-schemathesis/venv}
export SCHEMATHESIS_VENV=$VENV
BIN=${FOCUSFLOW_BIN:-${CARGO_TARGET_DIR:-target}/debug/focusflow}
PORT=${PORT:-3917}
MAX_EXAMPLES=${MAX_EXAMPLES:-60}

if [ -z "${FOCUSFLOW_NETNS:-}" ]; then
  if [ ! -x "$BIN" ]; then
    cargo build --locked
  fi
  if ! "$VENV/bin/schemathesis" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
    rm -rf "$VENV"; mkdir -p "$(dirname "$VENV")"
    if ! python3 -m venv "$VENV" 2>/dev/null; then
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3 python3-venv >/dev/null
      rm -rf "$VENV"; python3 -m venv "$VENV"
    fi
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
  fi
  if ! unshare --net true 2>/dev/null; then
    echo "error: this test needs a network namespace of its own (run as root, or with" >&2
    echo "       unprivileged user namespaces) so that no request can leave the machine" >&2
    exit 1
  fi
  exec unshare --net env FOCUSFLOW_NETNS=1 bash "$0" "$@"
fi

# Inside the namespace: bring loopback up; there is no other interface.
ip link set lo up 2>/dev/null || python3 - <<'EOF'
import fcntl, socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
flags = struct.unpack("16sH", fcntl.ioctl(s, 0x8913, struct.pack("16sH", b"lo", 0)))[1]
fcntl.ioctl(s, 0x8914, struct.pack("16sH", b"lo", flags | 1))
EOF

data=$(mktemp -d)
log="$data/server.log"
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
  if [ -n "${server:-}" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  rm -rf "$data"
}
trap cleanup EXIT

DATA_DIR="$data" HOST=127.0.0.1 PORT="$PORT" RATE_LIMIT_MAX_REQUESTS=0 RUST_LOG=warn \
  PROVIDER_TIMEOUT_SECS=2 "$BIN" >"$log" 2>&1 &
server=$!
base="http://127.0.0.1:$PORT"
for _ in $(seq 1 100); do
  curl -fsS "$base/api/health" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fsS "$base/api/health" >/dev/null

# A few jobs to find, so the id routes and search meet real data too (schemathesis also
# follows the links of what it creates).
for text in "Ana: the budget review is on Friday." "Ben: we ship the release next week."; do
  curl -fsS -X POST "$base/api/jobs" -H 'Content-Type: application/json' \
    -d "{\"transcript\": \"$text\", \"meetingDate\": \"2025-09-25\"}" >/dev/null
done

status=0
"$VENV/bin/schemathesis" run "$base/api/openapi.json" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,negative_data_rejection \
  --max-examples "$MAX_EXAMPLES" \
  --seed "${SEED:-20251125}" \
  --request-timeout 10 \
  --workers 2 \
  --generation-database none \
  --exclude-path '/api/jobs/{id}/logs/stream' \
  --no-color || status=$?

# The log stream is an endless response while a job runs; check it by hand: a finished job's
# stream ends with its status, an unknown id is a JSON 404.
id=$(curl -fsS -X POST "$base/api/jobs" -H 'Content-Type: application/json' \
  -d '{"transcript": "Ana: one more meeting."}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
for _ in $(seq 1 50); do
  curl -fsS "$base/api/jobs/$id" | grep -q '"status":"completed"' && break
  sleep 0.1
done
curl -fsS --max-time 5 "$base/api/jobs/$id/logs/stream" | grep -q '^event: status' \
  || { echo "the log stream of a finished job did not end with its status" >&2; status=1; }
code=$(curl -s -o /dev/null -w '%{http_code}' "$base/api/jobs/no-such-job/logs/stream")
[ "$code" = 404 ] || { echo "the log stream of an unknown job answered $code" >&2; status=1; }

if grep -q "panicked" "$log"; then
  echo "the server panicked:" >&2
  grep -A5 panicked "$log" >&2
  status=1
fi
if ! kill -0 "$server" 2>/dev/null; then
  echo "the server died during the run:" >&2
  tail -20 "$log" >&2
  status=1
fi
exit "$status"
