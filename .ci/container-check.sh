#!/usr/bin/env bash
# FocusFlow container check: build the real Dockerfile and run the real compose.yaml with rootful
# podman, without pulling any image (no container registry is reachable here).
#
# usage: bash .ci/container-check.sh [project-dir]        (default: the repository holding this file)
# env:   CTR_ROOT      podman state, tools and caches          (default /tmp/ctr/focusflow)
#        HOST_PORT     host port for the compose stack         (default: first free port from 3900)
#        PREPARE_ONLY=1  install the tools and make the base images, then stop
#        SKIP_CONTAINER_CHECK=1  do nothing (for local runs of .ci/run)
#
# What it proves: the image builds from a clean context and is under 40 MB; it holds only the
# expected files (the runtime stage is FROM scratch: no shell, so everything is probed through
# the API, `podman inspect` and `podman top`); the binary's shared libraries, name resolution
# (localhost via /etc/hosts) and its TLS client work inside it; the stack comes up healthy
# through the image's own healthcheck; the app runs as uid 10001, not root, with no capabilities;
# a job created through the API survives `compose restart` and `compose down` + `up` (the named
# volume keeps /app/data); `podman stop` (SIGTERM) ends the container in under 10 s. Any failed
# check prints a FAIL line and exits non-zero. The stack is removed (`down -v`) on exit.
#
# Notes (this machine kind: Debian bookworm, 2 cores, no container registry, rootful podman):
# - netavark (podman's network backend) needs iptables, which podman only "suggests": install it.
# - crun fails here ("cgroups in hybrid mode"): use runc; raise no ulimits above the hard limits.
# - build with --format docker, or podman drops HEALTHCHECK from the image.
# - no systemd: podman never schedules health checks, so this script runs `podman healthcheck run`.
# - podman-compose's exit code is not trustworthy: every outcome is checked directly.
# - the builder image is made locally and tagged with the official name the Dockerfile uses:
#   rust:<ver>-bookworm from a host rustup toolchain, on a debian:bookworm-slim made by
#   debootstrap. The runtime stage is FROM scratch, which needs no image.
# - HTTPS from inside a build step is intercepted on this network: the host CA bundle (found
#   where the system keeps it) is mounted for the build only (never baked into the Dockerfile)
#   so cargo can fetch crates.
# - the builder image is made from the host's rustup toolchain of the Dockerfile's version, or,
#   when there is none, from the newest stable one (with a copy of the Dockerfile naming it).
# - no traffic leaves the machine: job URLs name only `localhost` (resolved from /etc/hosts) and
#   are expected to fail (refused, or blocked as private by the default configuration).
set -euo pipefail

if [ "${SKIP_CONTAINER_CHECK:-0}" = 1 ]; then
  echo "container check skipped (SKIP_CONTAINER_CHECK=1)"
  exit 0
fi

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PROJ=$(cd "${1:-$HERE/..}" && pwd)
R=${CTR_ROOT:-/tmp/ctr/focusflow}
P=focusflowci                      # compose project name
SERVICE=focusflow
IMAGE=localhost/focusflow-ci:latest
T0=$SECONDS
declare -a TIMINGS=()

say()  { echo "== $*"; }
mb()   { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1000000 }'; }
fail() {
  echo "FAIL: $*" >&2
  if [ -n "${CID:-}" ] && podman container exists "$CID" 2>/dev/null; then
    echo "---- last container logs ----" >&2; podman logs --tail 40 "$CID" >&2 2>&1 || true
  fi
  exit 1
}
timed() {  # timed LABEL cmd...: run, record the duration
  local label=$1; shift; local s; s=$(date +%s%N)
  "$@"; local rc=$?
  TIMINGS+=("$(printf '%-34s %7.1fs' "$label" "$(( ($(date +%s%N) - s) / 1000000 ))e-3")")
  return $rc
}

[ "$(id -u)" = 0 ] || fail "run as root (rootful podman)"
{ [ -f "$PROJ/Dockerfile" ] && [ -f "$PROJ/compose.yaml" ]; } || fail "no Dockerfile/compose.yaml in $PROJ"
RUST_IMAGE=$(awk 'toupper($1)=="FROM" && $2 ~ /(^|\/)rust:/ {print $2; exit}' "$PROJ/Dockerfile")
RUST_IMAGE=${RUST_IMAGE:?the Dockerfile has no FROM rust:... line}
case $RUST_IMAGE in */*) ;; *) RUST_IMAGE=docker.io/library/$RUST_IMAGE ;; esac
RUST_VER=$(sed -E 's/.*rust:([0-9]+(\.[0-9]+)*).*/\1/' <<<"$RUST_IMAGE")
RUST_TAG_SUFFIX=$(sed -E 's/.*rust:[0-9]+(\.[0-9]+)*//' <<<"$RUST_IMAGE")   # e.g. -bookworm
DOCKERFILE=$PROJ/Dockerfile
mkdir -p "$R"/{storage,run,tmp,conf}

# The stand-in builder image is made from a host rustup toolchain: the Dockerfile's version when
# rustup has it, otherwise the newest stable toolchain here (no other can be downloaded). Then the
# image is built from a copy of the Dockerfile whose builder FROM names that version, and the
# check says so; the toolchain must still meet Cargo.toml's rust-version.
RH=${RUSTUP_HOME:-$HOME/.rustup}
pick_toolchain() {  # prints "<toolchain folder> <rustc version>"
  local d v best="" best_v=""
  for d in "$RH"/toolchains/*; do
    [ -x "$d/bin/rustc" ] || continue
    v=$("$d/bin/rustc" -V 2>/dev/null | awk '{print $2}') || continue
    [[ $v =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || continue     # stable only (no -nightly, -beta)
    if [[ $v == "$RUST_VER" || $v == "$RUST_VER".* ]]; then echo "$(basename "$d") $v"; return 0; fi
    if [ -z "$best_v" ] || [ "$(printf '%s\n%s\n' "$best_v" "$v" | sort -V | tail -1)" = "$v" ]; then
      best=$(basename "$d"); best_v=$v
    fi
  done
  [ -n "$best" ] && echo "$best $best_v"
}
TC_LINE=$(pick_toolchain || true)
[ -n "$TC_LINE" ] || fail "no stable rustup toolchain under $RH/toolchains to make the builder image from"
read -r TOOLCHAIN TOOLCHAIN_VER <<<"$TC_LINE"
if [[ $TOOLCHAIN_VER != "$RUST_VER" && $TOOLCHAIN_VER != "$RUST_VER".* ]]; then
  MSRV=$(sed -nE 's/^rust-version[[:space:]]*=[[:space:]]*"([0-9.]+)".*/\1/p' "$PROJ/Cargo.toml" | head -1)
  if [ -n "$MSRV" ] && [ "$(printf '%s\n%s\n' "$MSRV" "$TOOLCHAIN_VER" | sort -V | head -1)" != "$MSRV" ]; then
    fail "the newest stable toolchain here ($TOOLCHAIN, rustc $TOOLCHAIN_VER) is older than Cargo.toml's rust-version $MSRV"
  fi
  echo "note: no rustup toolchain $RUST_VER here (the Dockerfile's ${RUST_IMAGE##*/}); building with $TOOLCHAIN (rustc $TOOLCHAIN_VER) instead"
  RUST_VER=$(cut -d. -f1,2 <<<"$TOOLCHAIN_VER")
  RUST_IMAGE=docker.io/library/rust:$RUST_VER$RUST_TAG_SUFFIX
  DOCKERFILE=$R/Dockerfile.rust-$RUST_VER
  awk -v img="rust:$RUST_VER$RUST_TAG_SUFFIX" \
    '!done && toupper($1)=="FROM" && $2 ~ /(^|\/)rust:/ { sub(/rust:[^ \t]+/, img); done=1 } { print }' \
    "$PROJ/Dockerfile" > "$DOCKERFILE"
  echo "      the image is built from $DOCKERFILE: the Dockerfile with FROM $(awk 'toupper($1)=="FROM" {print $2; exit}' "$DOCKERFILE")"
fi

# 0. tools: Debian packages, podman-compose from PyPI (Debian's 1.0.3 is too old)
step0() {
  local need=()
  for c in podman runc debootstrap curl iptables; do command -v "$c" >/dev/null || need+=("$c"); done
  if [ ${#need[@]} -gt 0 ]; then
    say "installing podman & co (missing: ${need[*]})"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      podman buildah runc crun netavark aardvark-dns slirp4netns uidmap catatonit debootstrap \
      iptables curl ca-certificates >/dev/null
  fi
  if [ ! -x "$R/venv/bin/podman-compose" ]; then
    rm -rf "$R/venv"
    if ! python3 -m venv "$R/venv" 2>/dev/null; then
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3 python3-venv >/dev/null
      rm -rf "$R/venv"; /usr/bin/python3 -m venv "$R/venv"
    fi
    "$R/venv/bin/pip" install -q --disable-pip-version-check 'podman-compose==1.6.0'
  fi
}
timed "tools" step0

# 1. podman configuration for this sandbox (kept apart from any system podman state)
cat > "$R/conf/storage.conf" <<EOC
[storage]
driver = "overlay"
graphroot = "$R/storage"
runroot = "$R/run"
EOC
cat > "$R/conf/containers.conf" <<EOC
[containers]
# no CAP_SYS_RESOURCE: rootful defaults nofile=1048576/nproc=4194304 -> "setrlimit ... Operation not permitted"
default_ulimits = ["nofile=$(ulimit -Hn):$(ulimit -Hn)", "nproc=32768:32768"]
[network]
network_backend = "netavark"   # not CNI: its plugins are not installed
[engine]
runtime = "runc"   # crun 1.8.1: "cgroups in hybrid mode not supported"
tmp_dir = "$R/tmp"
volume_path = "$R/storage/volumes"
EOC
export CONTAINERS_STORAGE_CONF=$R/conf/storage.conf CONTAINERS_CONF=$R/conf/containers.conf \
       TMPDIR=$R/tmp BUILDAH_FORMAT=docker
PC=("$R/venv/bin/podman-compose" -p "$P")

# 2. base images without a registry, tagged with the official names
make_debian() {
  podman image exists docker.io/library/debian:bookworm-slim && { say "debian:bookworm-slim present (cached)"; return 0; }
  say "debootstrap bookworm -> docker.io/library/debian:bookworm-slim"
  local mirror rootfs=$R/rootfs
  mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  mirror=${mirror:-http://deb.debian.org/debian}
  rm -rf "$rootfs"
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$R/debootstrap.log" 2>&1 \
    || { tail -20 "$R/debootstrap.log"; fail "debootstrap"; }
  # trim it like the official -slim image: no docs, man pages, locales or apt caches
  cat > "$rootfs/etc/dpkg/dpkg.cfg.d/docker" <<'EOC'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
EOC
  echo 'APT::Install-Recommends "false";' > "$rootfs/etc/apt/apt.conf.d/docker-no-recommends"
  find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
  rm -rf "$rootfs"/usr/share/{man,groff,info,locale,lintian,linda}/* \
         "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin \
         "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*.log "$rootfs"/var/log/apt/*
  tar --numeric-owner -C "$rootfs" -c . \
    | podman import -q --change 'CMD ["bash"]' - docker.io/library/debian:bookworm-slim >/dev/null \
    || fail "podman import"
  rm -rf "$rootfs"
}
make_rust() {
  podman image exists "$RUST_IMAGE" && { say "${RUST_IMAGE##*/} present (cached)"; return 0; }
  say "host rustup toolchain $TOOLCHAIN (rustc $TOOLCHAIN_VER) -> $RUST_IMAGE"
  local rh=$RH ch=${CARGO_HOME:-$HOME/.cargo} tc=$TOOLCHAIN d
  local c=$R/rustctx; rm -rf "$c"; mkdir -p "$c/rustup/toolchains" "$c/cargo/bin"
  printf 'version = "12"\ndefault_toolchain = "%s"\nprofile = "minimal"\n' "$tc" > "$c/rustup/settings.toml"
  d=$(readlink -f "$rh/toolchains/$tc")   # may be a symlink to another toolchain folder
  cp -al "$d" "$c/rustup/toolchains/$tc" 2>/dev/null || cp -a "$d" "$c/rustup/toolchains/$tc"
  rm -rf "$c/rustup/toolchains/$tc/share/doc" "$c/rustup/toolchains/$tc/lib/rustlib/src"
  cp -a "$ch"/bin/{rustup,cargo,rustc,rustdoc} "$c/cargo/bin/"
  cat > "$c/Containerfile" <<EOC
FROM docker.io/library/debian:bookworm-slim
ENV RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo RUST_VERSION=$RUST_VER \\
    PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates gcc libc6-dev make pkg-config \\
 && rm -rf /var/lib/apt/lists/*
COPY rustup /usr/local/rustup
COPY cargo /usr/local/cargo
RUN rustc --version && cargo --version
EOC
  podman build -q --pull=never -t "$RUST_IMAGE" "$c" >"$R/rust-image.log" 2>&1 \
    || { tail -20 "$R/rust-image.log"; fail "building the stand-in $RUST_IMAGE"; }
  rm -rf "$c"
}
timed "base image debian:bookworm-slim" make_debian
timed "base image ${RUST_IMAGE##*/}" make_rust
if [ "${PREPARE_ONLY:-0}" = 1 ]; then printf '%s\n' "${TIMINGS[@]}"; echo "PREPARED"; exit 0; fi

# 3. the project image, from the real Dockerfile
cd "$PROJ"
say "building the image (release build; slow on 2 cores), log: $R/build.log"
# The host's CA bundle, wherever this system keeps it, is mounted where the Debian builder looks
# (HTTPS may be intercepted here); none found: the builder's own certificates are used.
find_ca_bundle() {
  local f
  for f in "${SSL_CERT_FILE:-}" /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt \
           /etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem /etc/ssl/ca-bundle.pem /etc/ssl/cert.pem \
           "$(python3 -c 'import ssl; p = ssl.get_default_verify_paths(); print(p.cafile or p.openssl_cafile)' 2>/dev/null)"; do
    if [ -n "$f" ] && [ -s "$f" ]; then echo "$f"; return 0; fi
  done
  return 1
}
CA_MOUNT=()
if CA=$(find_ca_bundle); then
  CA_MOUNT=(-v "$CA:/etc/ssl/certs/ca-certificates.crt:ro")
  echo "CA bundle for the build: $CA"
else
  echo "no CA bundle found on the host: the build uses the builder image's own"
fi
build() {
  podman build --pull=never --format docker "${CA_MOUNT[@]}" -f "$DOCKERFILE" -t "$IMAGE" . >"$R/build.log" 2>&1 \
    || { tail -30 "$R/build.log"; fail "image build"; }
}
timed "image build" build
# scripts/link-hot-first's line from the image's release build (a cached build step prints
# none): glibc linked in, and the functions the server runs placed first in its code, which
# happens only when scripts/code-order.txt names them as this toolchain and these dependencies
# do.
link_line=$(grep -E '^focusflow-[0-9a-f]+: ' "$R/build.log" | tail -1 || true)
if [ -n "$link_line" ]; then
  case $link_line in
    *": static glibc, "*) ;;
    *) fail "the image's release build did not link glibc statically: $link_line" ;;
  esac
  order_line=$(grep -o '[0-9]* of [0-9]* listed functions placed first' <<<"$link_line" || true)
  [ -n "$order_line" ] || fail "the image's release build placed no functions first: $link_line"
  read -r found _ listed _ <<<"$order_line"
  [ $((found * 10)) -ge $((listed * 9)) ] \
    || fail "the image's build placed $order_line: scripts/code-order.txt is stale; remake it (README, Development)"
  echo "OK: link: ${link_line#*: }"
elif grep -q '^code order: not applied' "$R/build.log"; then
  fail "the image's release build did not go through scripts/link-hot-first"
else
  echo "note: no link line in the build log (the build step came from the cache)"
fi
IMG_ID=$(podman image inspect --format '{{.Id}}' "$IMAGE")
IMG_SIZE=$(podman image inspect --format '{{.Size}}' "$IMAGE")
# compose.yaml names the published image (ghcr.io/...) unless FOCUSFLOW_IMAGE says otherwise:
# point it at ours, so `up` neither pulls (no registry here) nor rebuilds
export FOCUSFLOW_IMAGE=$IMAGE
MAX_BYTES=40000000
[ "$IMG_SIZE" -lt "$MAX_BYTES" ] || fail "the image is $IMG_SIZE bytes, over the 40 MB budget"
podman image inspect "$IMAGE" | tr -d ' \n' | grep -q '"Test":\["CMD","/app/focusflow","healthcheck"\]' \
  || fail "the image has no HEALTHCHECK running [\"/app/focusflow\", \"healthcheck\"] (built without --format docker?)"
IMG_USER=$(podman image inspect --format '{{.Config.User}}' "$IMAGE")
case ${IMG_USER%%:*} in ""|root|0) fail "the image's USER is '${IMG_USER}': it must be a non-root user" ;; esac
echo "OK: image built, $(mb "$IMG_SIZE") MB; HEALTHCHECK via the binary; USER $IMG_USER"

# what the image holds: a scratch image has only what the Dockerfile put there
TMPC=$(podman create --pull=never "$IMAGE" 2>/dev/null)
podman export "$TMPC" | tar -tv --numeric-owner > "$R/image-files.txt"
podman cp "$TMPC:/etc/passwd" "$R/image-passwd"
podman rm "$TMPC" >/dev/null 2>&1
for f in app/focusflow etc/passwd etc/group etc/nsswitch.conf app/prompts/meeting_summary.md \
         app/prompts/title_generator.md; do
  grep -qE " $f\$" "$R/image-files.txt" || fail "the image has no /$f"
done
grep -qE '^d.* 10001/10001 .* app/data/?$' "$R/image-files.txt" || fail "/app/data in the image is not owned by 10001:10001"
grep -qE '^drwxrwxrwt .* tmp/?$' "$R/image-files.txt" || fail "the image has no world-writable /tmp (mode 1777)"
grep -q '^focusflow:x:10001:10001:' "$R/image-passwd" || fail "/etc/passwd in the image does not define focusflow as 10001:10001"
BIN_SIZE=$(awk '$NF == "app/focusflow" {print $3}' "$R/image-files.txt")
echo "OK: image files: $(grep -vc '/$' "$R/image-files.txt") files, binary $BIN_SIZE bytes, /app/data 10001:10001, /tmp 1777"

# the binary's healthcheck must fail when nothing listens, and bad config must stop start-up
if timeout 30 podman run --rm --pull=never --network none "$IMAGE" /app/focusflow healthcheck >/dev/null 2>&1; then
  fail "'focusflow healthcheck' exits 0 with no server running"
fi
set +e; out=$(timeout 30 podman run --rm --pull=never --network none -e PORT=eighty "$IMAGE" 2>&1); rc=$?; set -e
{ [ "$rc" != 0 ] && [ "$rc" != 124 ]; } || fail "PORT=eighty did not stop start-up (exit $rc)"
grep -q PORT <<<"$out" || fail "the start-up error for PORT=eighty does not name PORT: $out"
echo "OK: healthcheck fails without a server; bad config stops start-up: $(grep PORT <<<"$out" | tail -1)"

free_port() {  # free_port FROM: the first port from FROM that nothing on 127.0.0.1 holds
  python3 - "$1" <<'EOP'
import socket, sys
start = int(sys.argv[1])
for port in range(start, start + 100):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port)); print(port); break
    except OSError:
        pass
    finally:
        s.close()
EOP
}
PROBE=${P}-probe
CREATED_ENV=0
cleanup() {
  podman rm -f -t 0 "$PROBE" >/dev/null 2>&1 || true
  "${PC[@]}" down -v -t 5 >/dev/null 2>&1 || true
  [ "$CREATED_ENV" = 1 ] && rm -f "$PROJ/.env"
  return 0
}
trap cleanup EXIT
post_job() {  # post_job BASE URL -> prints the new job's id
  local code
  code=$(curl -sS -o "$R/created.json" -w '%{http_code}' -X POST -H 'content-type: application/json' \
    -d "{\"url\":\"$2\"}" "$1/api/jobs") || fail "POST $1/api/jobs: no answer"
  [ "$code" = 201 ] || fail "POST /api/jobs {url: $2} -> $code $(cat "$R/created.json")"
  python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$R/created.json" \
    || fail "no id in $(cat "$R/created.json")"
}
wait_log() {  # wait_log BASE ID REGEX: until a log line of the job matches (20 s), print it
  local _ line
  for _ in $(seq 40); do
    curl -sS -o "$R/probe-job.json" "$1/api/jobs/$2" || true
    line=$(python3 -c 'import json,sys; print("\n".join(json.load(open(sys.argv[1])).get("logs", [])))' \
      "$R/probe-job.json" 2>/dev/null | grep -E -m1 "$3" || true)
    [ -n "$line" ] && { echo "$line"; return 0; }
    sleep 0.5
  done
  return 1
}

# 4. inside the image, with no shell to look around: the shared libraries load (the app serves),
# glibc resolves `localhost` from /etc/hosts (a job for http://localhost:1/ is refused by the
# port, not lost in a lookup), and the TLS client works without CA files (rustls with bundled
# roots: https to the app's own plain-HTTP port fails in the handshake, not earlier).
PROBE_PORT=$(free_port 3950)
podman rm -f -t 0 "$PROBE" >/dev/null 2>&1 || true
podman run -d --pull=never --name "$PROBE" -p "127.0.0.1:$PROBE_PORT:3000" -e ALLOW_PRIVATE_URLS=true \
  "$IMAGE" >/dev/null 2>"$R/probe-run.log" || { cat "$R/probe-run.log"; fail "podman run (probe container)"; }
PBASE=http://127.0.0.1:$PROBE_PORT
for _ in $(seq 40); do curl -fsS -o /dev/null "$PBASE/api/health" 2>/dev/null && break; sleep 0.5; done
curl -fsS -o /dev/null "$PBASE/api/health" || { podman logs "$PROBE" 2>&1 | tail -20; fail "the probe container does not serve /api/health"; }
J1=$(post_job "$PBASE" "http://localhost:1/a.mp3") || exit 1
J2=$(post_job "$PBASE" "https://localhost:3000/a.mp3") || exit 1
L1=$(wait_log "$PBASE" "$J1" 'look up|lookup|refused|failed') || fail "job $J1 (http://localhost:1/) logged no failure within 20 s"
grep -qi 'connection refused' <<<"$L1" || fail "resolving localhost inside the image failed: $L1"
echo "OK: name resolution in the image: $L1"
L2=$(wait_log "$PBASE" "$J2" 'look up|lookup|refused|failed') || fail "job $J2 (https://localhost:3000/) logged no failure within 20 s"
grep -qiE 'corrupt message|InvalidContentType|handshake|tls' <<<"$L2" || fail "the TLS client did not reach the handshake: $L2"
echo "OK: TLS client in the image: $L2"
podman rm -f -t 0 "$PROBE" >/dev/null 2>&1 || true

# 5. compose: up, healthy, non-root, a job that survives restart and down/up, fast SIGTERM stop
HOST_PORT=${HOST_PORT:-$(free_port 3900)}
export HOST_PORT
BASE=http://127.0.0.1:$HOST_PORT
[ -f .env ] || { cp .env.example .env; CREATED_ENV=1; }

container() { podman ps -q --filter "label=com.docker.compose.project=$P" --filter "label=com.docker.compose.service=$SERVICE" | head -1; }
wait_healthy() {  # podman cannot schedule healthchecks without systemd: run them by hand
  local _
  for _ in $(seq 120); do
    CID=$(container)
    if [ -n "$CID" ] && podman healthcheck run "$CID" >/dev/null 2>&1; then
      [ "$(podman inspect -f '{{.State.Health.Status}}' "$CID")" = healthy ] && return 0
    fi
    sleep 0.5
  done
  fail "container not healthy within 60 s"
}
get_job() {  # get_job ID -> prints status, fails unless 200 with that id
  local code
  code=$(curl -sS -o "$R/job.json" -w '%{http_code}' "$BASE/api/jobs/$1") || fail "GET /api/jobs/$1: no answer"
  [ "$code" = 200 ] || fail "GET /api/jobs/$1 -> $code $(cat "$R/job.json")"
  python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); assert j["id"]==sys.argv[2], j; print(j["status"])' \
    "$R/job.json" "$1" || fail "GET /api/jobs/$1 returned another job"
}

say "compose up on port $HOST_PORT"
up_healthy() {
  "${PC[@]}" up -d >"$R/compose-up.log" 2>&1 || { grep -v systemd "$R/compose-up.log" | tail -5; fail "compose up"; }
  wait_healthy
}
timed "compose up -> healthy" up_healthy
[ "$(podman inspect -f '{{.Image}}' "$CID")" = "$IMG_ID" ] || fail "compose runs another image than the one built"
HEALTH=$(curl -fsS "$BASE/api/health") || fail "GET /api/health through the published port"
echo "OK: healthy; /api/health -> $HEALTH"
python3 -c 'import json,sys; j=json.loads(sys.argv[1]); assert j["status"]=="ok" and j["env"]["dataDir"].rstrip("/")=="data", j' "$HEALTH" \
  || fail "/api/health does not say status ok with dataDir data (DATA_DIR=/app/data, shown without the server path)"

# no shell in the image: ask podman (host view of pid 1, and the volume's host directory)
read -r PUSER HUSER HGROUP CAPS < <(podman top "$CID" user huser hgroup capeff | awk 'NR==2{print $1, $2, $3, $4}')
{ [ "$HUSER" = 10001 ] && [ "$HGROUP" = 10001 ]; } || fail "pid 1 runs as host uid:gid $HUSER:$HGROUP, expected 10001:10001"
[ "$CAPS" = none ] || fail "pid 1 has effective capabilities: $CAPS"
VOL=$(podman inspect -f '{{range .Mounts}}{{if eq .Destination "/app/data"}}{{.Source}}{{end}}{{end}}' "$CID")
{ [ -n "$VOL" ] && [ -d "$VOL" ]; } || fail "no volume mounted at /app/data"
[ "$(stat -c %u:%g "$VOL")" = 10001:10001 ] || fail "/app/data (the named volume, $VOL) is owned by $(stat -c %u:%g "$VOL"), not 10001:10001"
echo "OK: pid 1 runs as $PUSER (uid:gid 10001:10001, no capabilities); /app/data owned by 10001:10001"

# the default configuration refuses loopback URLs: the job fails at once, without any traffic
JOB=$(post_job "$BASE" "http://localhost:1/a.mp3") || exit 1
L=$(wait_log "$BASE" "$JOB" 'refused|failed') || fail "job $JOB logged no outcome within 20 s"
echo "OK: created job $JOB: $L"
[ -n "$(ls -A "$VOL")" ] || fail "nothing was written to the named volume ($VOL)"

restart_healthy() { "${PC[@]}" restart >"$R/compose-restart.log" 2>&1 || true; wait_healthy; }
timed "compose restart -> healthy" restart_healthy
ST=$(get_job "$JOB") || exit 1
echo "OK: job $JOB read back after restart, status $ST"

downup_healthy() {
  "${PC[@]}" down -t 10 >"$R/compose-down.log" 2>&1 || true
  [ -z "$(container)" ] || fail "container still running after compose down"
  up_healthy
}
timed "compose down + up -> healthy" downup_healthy
ST=$(get_job "$JOB") || exit 1
echo "OK: job $JOB read back after down + up (the named volume kept it), status $ST"

stop_it() { podman stop -t 30 "$CID" >/dev/null 2>"$R/stop.log"; }  # stderr: systemd timer noise
s=$(date +%s%N); timed "podman stop (SIGTERM)" stop_it; STOP_MS=$(( ($(date +%s%N) - s) / 1000000 ))
EXIT=$(podman inspect -f '{{.State.ExitCode}}' "$CID")
[ "$STOP_MS" -lt 10000 ] || fail "podman stop took ${STOP_MS} ms (SIGTERM not handled?)"
echo "OK: podman stop took ${STOP_MS} ms, exit code $EXIT"
[ "$EXIT" = 137 ] && fail "the container was killed (exit 137) instead of stopping on SIGTERM"

# 6. report
COMPRESSED=$(podman save "$IMAGE" 2>/dev/null | gzip -1 -c | wc -c)
echo
echo "---- timings ----"
printf '%s\n' "${TIMINGS[@]}"
printf '%-34s %7ss\n' "total" "$(( SECONDS - T0 ))"
echo "---- image ----"
echo "image size: $(mb "$IMG_SIZE") MB uncompressed ($IMG_SIZE bytes), $(mb "$COMPRESSED") MB gzip; binary $(mb "$BIN_SIZE") MB"
cat "$R/image-files.txt"
echo "CONTAINER CHECK PASSED"
