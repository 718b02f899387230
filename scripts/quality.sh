#!/usr/bin/env bash
# The web UI's quality bars (see scripts/quality/check.mjs): Lighthouse accessibility, best
# practices and SEO 100 on the home page and a job page (phone and desktop, light and dark;
# performance reported), and no axe-core violation, on pages the real binary serves from a
# seeded data folder. Fails below a bar.
#
# Installs what it needs on a fresh machine (as root): Debian's chromium, and Lighthouse,
# puppeteer-core (which drives that chromium, and downloads no browser) and axe-core from npm,
# into a folder of its own under the target folder. Lighthouse 12 is the last that runs on the
# machine's Node.js 20.
set -euo pipefail
cd "$(dirname "$0")/.."

target=${CARGO_TARGET_DIR:-$PWD/target}
work="$target/quality"
mkdir -p "$work"

if ! command -v chromium >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    chromium fonts-liberation >/dev/null
fi
if ! command -v npm >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
# The browser binary itself (Debian's /usr/bin/chromium is a shell wrapper that adds flags of
# its own).
browser=/usr/lib/chromium/chromium
[ -x "$browser" ] || browser=$(command -v chromium)

packages=(lighthouse@12.8.2 puppeteer-core@24 axe-core@4)
if [ ! -f "$work/node_modules/lighthouse/package.json" ] ||
   [ ! -f "$work/node_modules/axe-core/package.json" ] ||
   [ ! -f "$work/node_modules/puppeteer-core/package.json" ]; then
  [ -f "$work/package.json" ] || echo '{"name": "focusflow-quality", "private": true}' >"$work/package.json"
  (cd "$work" && npm install --no-audit --no-fund --silent "${packages[@]}")
fi
cp scripts/quality/check.mjs "$work/check.mjs"

cargo build --locked --bin focusflow
node --version
node "$work/check.mjs" "$target/debug/focusflow" "$browser" "$work/reports"
