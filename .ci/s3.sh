#!/usr/bin/env bash
# A throwaway S3-compatible server for the tests: moto's server (PyPI `moto[server]`, real S3
# over HTTP: SigV4, multipart uploads, ranged GETs, listings) on a free port of 127.0.0.1, with
# one bucket.
#
#   eval "$(bash .ci/s3.sh start)"   # exports FOCUSFLOW_TEST_STORAGE_URL, AWS_ENDPOINT_URL,
#                                    # AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY
#                                    # and FOCUSFLOW_TEST_S3_DIR
#   cargo test --test api            # every app gets a prefix of its own in that bucket
#   bash .ci/s3.sh stop "$FOCUSFLOW_TEST_S3_DIR"
#
# moto is installed into a virtual environment (Debian's Python is externally managed), kept in
# FOCUSFLOW_S3_VENV (default ~/.cache/focusflow-moto) so a second start installs nothing.
# Progress goes to stderr; stdout carries only the export lines.
set -euo pipefail

say() { echo "s3.sh: $*" >&2; }
venv=${FOCUSFLOW_S3_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/focusflow-moto}
bucket=focusflow-test

start() {
  if [ ! -x "$venv/bin/moto_server" ]; then
    if ! python3 -m venv --help >/dev/null 2>&1; then
      [ "$(id -u)" = 0 ] || { say "python3-venv is missing (apt-get install python3-venv, as root)"; exit 1; }
      say "installing Debian's python3-venv"
      apt-get update -qq >&2
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >&2
    fi
    say "installing moto[server] into $venv"
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install -q --disable-pip-version-check 'moto[server]>=5,<6' >&2
  fi
  local dir port
  dir=$(mktemp -d /tmp/focusflow-s3.XXXXXX)
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  "$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$dir/server.log" 2>&1 &
  echo $! >"$dir/pid"
  local endpoint=http://127.0.0.1:$port
  for _ in $(seq 1 100); do
    if python3 - "$endpoint" "$bucket" 2>/dev/null <<'PY'
import sys, urllib.request
request = urllib.request.Request(f"{sys.argv[1]}/{sys.argv[2]}", method="PUT")
urllib.request.urlopen(request, timeout=2).read()
PY
    then
      say "moto $("$venv/bin/python" -c 'import moto; print(moto.__version__)') on $endpoint, bucket $bucket"
      echo "export FOCUSFLOW_TEST_STORAGE_URL=s3://$bucket/run-$(date +%s)-$$"
      echo "export AWS_ENDPOINT_URL=$endpoint AWS_REGION=us-east-1"
      echo "export AWS_ACCESS_KEY_ID=focusflow-test AWS_SECRET_ACCESS_KEY=focusflow-test-secret"
      echo "export FOCUSFLOW_TEST_S3_DIR=$dir"
      return 0
    fi
    sleep 0.2
  done
  say "moto did not start:"; cat "$dir/server.log" >&2
  stop "$dir"
  exit 1
}

stop() {
  local dir=${1:?usage: s3.sh stop DIR}
  if [ -f "$dir/pid" ]; then
    kill "$(cat "$dir/pid")" 2>/dev/null || true
  fi
  rm -rf "$dir"
}

case "${1:-start}" in
  start) start ;;
  stop) stop "${2:-}" ;;
  *) say "usage: s3.sh start | stop DIR"; exit 2 ;;
esac
