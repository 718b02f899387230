#!/usr/bin/env bash
# The stated minimum Rust version must cover every locked dependency. These machines have one
# toolchain and cannot download another, so the minimum cannot be proven by building with it;
# instead this reads the `rust_version` every locked package declares (cargo metadata) and fails
# when Cargo.toml's `rust-version` is lower than the highest of them, or when the README or the
# Dockerfile's builder image states another version.
#
# Only the platforms FocusFlow ships for count (a Windows-only crate's rust-version is irrelevant):
# x86_64 and aarch64 Linux, glibc and musl.
#
# usage: bash .ci/msrv-check.sh [project-dir]     (default: the repository holding this file)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PROJ=$(cd "${1:-$HERE/..}" && pwd)
cd "$PROJ"

fail() { echo "FAIL: $*" >&2; exit 1; }

platforms=()
for target in x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu x86_64-unknown-linux-musl aarch64-unknown-linux-musl; do
  platforms+=(--filter-platform "$target")
done
meta=$(mktemp)
trap 'rm -f "$meta"' EXIT
# --offline reads the crates already downloaded; on a fresh machine fetch them first (crates.io).
if ! cargo metadata --locked --offline --format-version 1 "${platforms[@]}" >"$meta" 2>/dev/null; then
  echo "cargo metadata --offline: crates missing, fetching them (cargo fetch --locked)"
  cargo fetch --locked >/dev/null || fail "cargo fetch --locked failed"
  cargo metadata --locked --offline --format-version 1 "${platforms[@]}" >"$meta" \
    || fail "cargo metadata --locked --offline failed"
fi

# prints: "<stated> <highest> <package@version>..." (the packages that declare the highest)
read -r stated highest culprits < <(python3 - "$meta" <<'EOF'
import json, sys

def key(version):
    parts = [int(p) for p in version.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))

meta = json.load(open(sys.argv[1]))
roots = set(meta["workspace_members"])
stated = None
deps = []
for package in meta["packages"]:
    version = package.get("rust_version")
    if package["id"] in roots:
        stated = version
    elif version:
        deps.append((key(version), version, f'{package["name"]}@{package["version"]}'))
if not deps:
    sys.exit("no locked package declares a rust_version")
top = max(d[0] for d in deps)
names = sorted({d[2] for d in deps if d[0] == top})
highest = next(d[1] for d in deps if d[0] == top)
print(stated or "none", highest, ",".join(names))
EOF
)

[ "$stated" != none ] || fail "Cargo.toml has no rust-version (the locked dependencies need Rust $highest)"
older() {  # older A B: A is a lower version than B
  [ "$1" != "$2" ] && [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -1)" = "$1" ]
}
norm() { awk -F. '{ printf "%d.%d.%d\n", $1, $2, $3 }' <<<"$1"; }
if older "$(norm "$stated")" "$(norm "$highest")"; then
  fail "Cargo.toml says rust-version = \"$stated\", but locked dependencies need Rust $highest ($culprits). Raise rust-version in Cargo.toml and the README's \"Rust $stated or newer\" to $highest."
fi

# The README states the same minimum ("Rust 1.88 or newer").
readme=$(grep -oE 'Rust [0-9]+\.[0-9]+(\.[0-9]+)? or newer' README.md | head -1 | awk '{print $2}')
[ -n "$readme" ] || fail "README.md does not state the minimum Rust version (\"Rust $stated or newer\")"
[ "$(norm "$readme")" = "$(norm "$stated")" ] \
  || fail "README.md says Rust $readme or newer, Cargo.toml's rust-version is $stated"

# The Dockerfile's builder image must not be older than the minimum.
image=$(awk 'toupper($1)=="FROM" && $2 ~ /(^|\/)rust:/ {print $2; exit}' Dockerfile)
tag=${image##*rust:}
docker_ver=$(grep -oE '^[0-9]+\.[0-9]+(\.[0-9]+)?' <<<"$tag" || true)
[ -n "$docker_ver" ] || fail "the Dockerfile's builder image ($image) is not pinned to a Rust version"
if older "$(norm "$docker_ver")" "$(norm "$stated")"; then
  fail "the Dockerfile builds with $image, older than rust-version $stated"
fi

echo "OK: rust-version $stated (Cargo.toml, README) >= $highest, the highest of the locked dependencies ($culprits); Dockerfile $image"
