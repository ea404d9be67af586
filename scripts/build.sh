#!/usr/bin/env bash
# Release build of the wasm package:
#   pkg/       --target web     what `npm pack` ships. One package for webpack 5,
#                               Vite and a plain <script type="module">: the
#                               glue finds its .wasm with new URL(…, import.meta.url),
#                               which both bundlers emit as an asset, and load()
#                               can fall back when WebAssembly is blocked.
#   pkg-node/  --target nodejs  Node: tests, scripts/replay.mjs, benchmarks
# Tools come from scripts/setup.sh; --mode no-install stops wasm-pack from
# trying to download anything, and wasm-opt is the npm binaryen on PATH.
# The glue and snippets are then minified in place (scripts/minify.mjs).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$HOME/.cargo/bin:$PATH"

command -v wasm-opt >/dev/null || { echo "build: wasm-opt missing; run scripts/setup.sh" >&2; exit 1; }

rm -rf pkg-web # the separate web build of earlier versions
for target in web nodejs; do
  case $target in
    web) out=pkg ;;
    nodejs) out=pkg-node ;;
  esac
  echo "build: wasm-pack --target $target -> $out/"
  rm -rf "$out"
  # Drop wasm-pack's harmless update-check noise; pipefail keeps a failed build failing.
  wasm-pack --quiet build --release --mode no-install --target "$target" --out-dir "$out" --out-name insitu 2>&1 \
    | { grep -v "failed to get wasm-pack version" || true; }
  test -f "$out/insitu_bg.wasm" || { echo "build: $out/insitu_bg.wasm was not produced" >&2; exit 1; }
  # One entry point, index.js: load(), open() (the store) and the wasm classes.
  if [ "$target" = web ]; then node scripts/entry.mjs "$out"; fi
  # Ship the JavaScript minified (terser, from npm); the sources stay readable.
  node scripts/minify.mjs "$out"
  # The generated class declares [Symbol.dispose]; say which TypeScript lib
  # that needs, so consumers on an ES2022 lib still type-check.
  if grep -q "Symbol.dispose" "$out/insitu.d.ts"; then
    printf '/// <reference lib="esnext.disposable" />\n%s\n' "$(cat "$out/insitu.d.ts")" >"$out/insitu.d.ts.tmp"
    mv "$out/insitu.d.ts.tmp" "$out/insitu.d.ts"
  fi
done
