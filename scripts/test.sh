#!/usr/bin/env bash
# `npm test`: setup, then every test layer. Each layer prints its runner's own
# closing line; a failed layer does not stop the others, so one run shows every
# failure. Layers that need the release build are skipped (and counted as
# failed) when the build fails. Exits non-zero when any layer failed.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
export CARGO_TERM_COLOR=never

bash scripts/setup.sh || { echo "test: setup failed"; echo "layers: 0 passed, 1 failed"; exit 1; }

passed=0
failed=0
failures=()
summary=()

layer() {
  local name=$1
  shift
  echo
  echo "=== layer: $name"
  local start=$SECONDS
  if "$@"; then
    passed=$((passed + 1))
    summary+=("  ok    $name ($((SECONDS - start)) s)")
  else
    failed=$((failed + 1))
    failures+=("$name")
    summary+=("  FAIL  $name ($((SECONDS - start)) s)")
  fi
}

skip() {
  failed=$((failed + 1))
  failures+=("$1 (skipped: build failed)")
  summary+=("  SKIP  $1")
}

layer "cargo fmt --check" cargo fmt --all --check
layer "cargo clippy (native, every feature: the union of the three builds)" cargo clippy --workspace --all-targets --features full --quiet -- -D warnings
# The two .wasm builds: no std, only the boundary's exports.
layer "cargo clippy (wasm32: first-decision module and full engine)" bash -c '
  set -e
  for f in first full; do
    CARGO_TARGET_DIR=target/wasm-clippy cargo clippy --lib --target wasm32-unknown-unknown --no-default-features \
      --features "$f" --quiet -- -D warnings
  done'
layer "cargo test" cargo test --workspace --quiet
# Seeded fuzzing of every reader of outside bytes (tests/fuzz.rs), release
# build, 300,000 inputs per target; prints the counts.
layer "fuzz (seeded, tests/fuzz.rs)" env INSITU_FUZZ_INPUTS=300000 \
  cargo test --release --quiet --test fuzz -- --nocapture
layer "wasm-pack test --node" wasm-pack test --node --mode no-install -- --features full
layer "wasm-pack test --headless --chrome" \
  wasm-pack test --headless --chrome --chromedriver "$(command -v chromedriver)" --mode no-install \
  -- --features full,test-in-browser
# The control plane, type-checked strictly; emits target/ts/ for the unit tests.
layer "tsc --strict (src/ts/)" tsc -p tsconfig.json

if bash scripts/build.sh; then
  passed=$((passed + 1))
  summary+=("  ok    release build (pkg/: the two .wasm modules and the control plane)")
  layer "size budgets (npm run size; the stored snapshot: npm run bench:snapshot -- --check)" \
    bash -c 'node scripts/size.mjs && node benches/snapshot-size.mjs --check'
  layer "JS API tests (node --test)" bash -c '
    set -eo pipefail
    # The trap test needs a full engine that exports a deliberate panic (never shipped).
    mkdir -p target/pkg-panic
    CARGO_TARGET_DIR=target/wasm-panic cargo build --quiet --lib --release --target wasm32-unknown-unknown \
      --no-default-features --features full,test-panic
    cp target/wasm-panic/wasm32-unknown-unknown/release/insitu.wasm target/pkg-panic/insitu_full.wasm
    node --test tests/js/'
  layer "browser end-to-end (demo)" node tests/browser/demo.e2e.mjs
  layer "browser end-to-end (store: two pages, reload, forget, quick exits, no network)" node tests/browser/store.e2e.mjs
  layer "browser end-to-end (issue 23: quick exits, hidden pages, blocked storage, sandboxed iframes)" node tests/browser/issue23.e2e.mjs
  layer "packaging check (npm pack -> webpack, Vite, <script type=module>; each also under a CSP without wasm)" node tests/browser/pack-check.mjs
else
  failed=$((failed + 1))
  failures+=("release build")
  for l in "size budgets" "JS API tests" "browser end-to-end (demo)" "browser end-to-end (store)" "browser end-to-end (issue 23)" "packaging check"; do skip "$l"; done
fi

echo
echo "=== summary"
printf '%s\n' "${summary[@]}"
echo "total time: ${SECONDS} s"
echo "layers: ${passed} passed, ${failed} failed"
[ "$failed" -eq 0 ]
