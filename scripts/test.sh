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
layer "cargo clippy (native)" cargo clippy --workspace --all-targets --quiet -- -D warnings
layer "cargo clippy (wasm32)" cargo clippy --workspace --target wasm32-unknown-unknown --all-targets --quiet -- -D warnings
layer "cargo test" cargo test --workspace --quiet
# Seeded fuzzing of every reader of outside bytes (tests/fuzz.rs), release
# build, 300,000 inputs per target; prints the counts.
layer "fuzz (seeded, tests/fuzz.rs)" env INSITU_FUZZ_INPUTS=300000 \
  cargo test --release --quiet --test fuzz -- --nocapture
layer "wasm-pack test --node" wasm-pack test --node --mode no-install
layer "wasm-pack test --headless --chrome" \
  wasm-pack test --headless --chrome --chromedriver "$(command -v chromedriver)" --mode no-install \
  -- --features test-in-browser

if bash scripts/build.sh; then
  passed=$((passed + 1))
  summary+=("  ok    release build (wasm-pack: the package, and Node for the tests)")
  layer "size report" node scripts/size.mjs
  layer "JS API tests (node --test)" bash -c '
    set -eo pipefail
    # The panic-hook test needs a build that exports a deliberate panic (never shipped).
    wasm-pack --quiet build --dev --mode no-install --target nodejs --out-dir target/pkg-panic \
      --out-name insitu -- --features test-panic 2>&1 | { grep -v "failed to get wasm-pack version" || true; }
    node --test tests/js/'

  layer "browser end-to-end (demo)" node tests/browser/demo.e2e.mjs
  layer "browser end-to-end (store: two pages, reload, forget, no network)" node tests/browser/store.e2e.mjs
  layer "packaging check (npm pack -> webpack, Vite, <script type=module>; each also under a CSP without wasm)" node tests/browser/pack-check.mjs
else
  failed=$((failed + 1))
  failures+=("release build")
  for l in "size report" "JS API tests" "browser end-to-end (demo)" "browser end-to-end (store)" "packaging check"; do skip "$l"; done
fi

echo
echo "=== summary"
printf '%s\n' "${summary[@]}"
echo "total time: ${SECONDS} s"
echo "layers: ${passed} passed, ${failed} failed"
[ "$failed" -eq 0 ]
