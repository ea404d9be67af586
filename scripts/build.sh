#!/usr/bin/env bash
# Release build of the wasm package for every way people load it:
#   pkg/       --target bundler  (webpack, Vite; what `npm pack` ships)
#   pkg-web/   --target web      (plain <script type="module">)
#   pkg-node/  --target nodejs   (Node: tests, scripts/replay.mjs, benchmarks)
# Tools come from scripts/setup.sh; --mode no-install stops wasm-pack from
# trying to download anything, and wasm-opt is the npm binaryen on PATH.
# The glue and snippets are then minified in place (scripts/minify.mjs).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$HOME/.cargo/bin:$PATH"

command -v wasm-opt >/dev/null || { echo "build: wasm-opt missing; run scripts/setup.sh" >&2; exit 1; }

for target in bundler web nodejs; do
  case $target in
    bundler) out=pkg ;;
    web) out=pkg-web ;;
    nodejs) out=pkg-node ;;
  esac
  echo "build: wasm-pack --target $target -> $out/"
  rm -rf "$out"
  # Drop wasm-pack's harmless update-check noise; pipefail keeps a failed build failing.
  wasm-pack --quiet build --release --mode no-install --target "$target" --out-dir "$out" --out-name insitu 2>&1 \
    | { grep -v "failed to get wasm-pack version" || true; }
  test -f "$out/insitu_bg.wasm" || { echo "build: $out/insitu_bg.wasm was not produced" >&2; exit 1; }
  # One entry point, index.js: the wasm classes plus open() (the store).
  if [ "$target" != nodejs ]; then node scripts/entry.mjs "$out" "$target"; fi
  # Ship the JavaScript minified (terser, from npm); the sources stay readable.
  node scripts/minify.mjs "$out"
  # The generated class declares [Symbol.dispose]; say which TypeScript lib
  # that needs, so consumers on an ES2022 lib still type-check.
  if grep -q "Symbol.dispose" "$out/insitu.d.ts"; then
    printf '/// <reference lib="esnext.disposable" />\n%s\n' "$(cat "$out/insitu.d.ts")" >"$out/insitu.d.ts.tmp"
    mv "$out/insitu.d.ts.tmp" "$out/insitu.d.ts"
  fi
done
