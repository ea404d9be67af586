#!/usr/bin/env bash
# Installs everything the build and the tests need, from the package registries
# only (crates.io, npm, Debian). Idempotent: each step checks first and is
# skipped when the right version is already there, so a second run takes
# seconds. Fails with a message that says what to do when a step cannot work.
set -euo pipefail
cd "$(dirname "$0")/.."

WASM_PACK_VERSION=0.15.1
export PATH="$PWD/node_modules/.bin:${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: ERROR: %s\n' "$*" >&2; exit 1; }

command -v cargo >/dev/null || die "cargo is not installed; install Rust with rustup first"
command -v node >/dev/null || die "node is not installed; install Node.js 20 or later"
command -v npm >/dev/null || die "npm is not installed"

# 1. Rust: wasm32 target and the fmt/clippy components the test layers use.
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "adding rust target wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown || die "rustup could not add wasm32-unknown-unknown"
fi
for comp in rustfmt clippy; do
  if ! rustup component list --installed | grep -q "^$comp"; then
    say "adding rust component $comp"
    rustup component add "$comp" || die "rustup could not add $comp"
  fi
done

# 2. wasm-pack from crates.io (the npm package downloads a binary from GitHub, which fails here).
if [ "$(wasm-pack --version 2>/dev/null | awk '{print $2}')" != "$WASM_PACK_VERSION" ]; then
  say "installing wasm-pack $WASM_PACK_VERSION with cargo (about 4 min)"
  cargo install wasm-pack --locked --version "$WASM_PACK_VERSION" || die "cargo install wasm-pack failed"
fi

# 3. wasm-bindgen-cli at exactly the version Cargo.lock pins: wasm-pack only
#    uses a CLI whose version matches, and cannot download one here.
[ -f Cargo.lock ] || cargo generate-lockfile
WB_VERSION=$(awk '/^name = "wasm-bindgen"$/ {getline; gsub(/"/, "", $3); print $3; exit}' Cargo.lock)
[ -n "$WB_VERSION" ] || die "cannot read the wasm-bindgen version from Cargo.lock"
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$WB_VERSION" ]; then
  say "installing wasm-bindgen-cli $WB_VERSION with cargo (about 4 min)"
  # No --locked: its lock file pins a webpki-roots the registry does not serve.
  cargo install wasm-bindgen-cli --version "$WB_VERSION" || die "cargo install wasm-bindgen-cli failed"
fi

# 4. npm dependencies, including wasm-opt (npm binaryen; Debian's binaryen 108
#    produces .wasm files that fail at load time). Re-run `npm ci` only when
#    package-lock.json changed since the last install.
lock_hash=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f node_modules/.insitu-lock-hash ] || [ "$(cat node_modules/.insitu-lock-hash)" != "$lock_hash" ]; then
  say "installing npm dependencies (npm ci)"
  npm ci --no-audit --no-fund || die "npm ci failed"
  echo "$lock_hash" > node_modules/.insitu-lock-hash
fi
[ "$(wasm-opt --version 2>/dev/null | awk '{print $3}')" = "132" ] || die "wasm-opt from npm binaryen 132 is not on PATH"

# 5. Chromium and chromedriver for the browser test layers, from Debian.
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    say "installing chromium and chromium-driver with apt (about 70 s)"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; } \
      || die "apt-get could not install chromium chromium-driver"
  else
    die "chromium and chromedriver are missing; run as root or: sudo apt-get install -y chromium chromium-driver"
  fi
fi

say "ok: $(wasm-pack --version), wasm-bindgen $WB_VERSION, wasm-opt $(wasm-opt --version | awk '{print $3}'), $(chromium --version 2>/dev/null | head -1)"
