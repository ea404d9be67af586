#!/usr/bin/env bash
# Release build of the package in pkg/ (what `npm pack` ships, for webpack 5,
# Vite, a plain <script type="module"> and Node alike):
#   insitu_bg.wasm    the first-decision module (cargo feature `first`)
#   insitu_full.wasm  the full engine, loaded after the first paint (`full`)
#   index.js          the TypeScript control plane (src/ts/), one minified ES module
#   types/            its declarations, generated from the source by tsc
# The .wasm files are built with cargo for wasm32-unknown-unknown without the
# standard library and optimised with wasm-opt (npm binaryen 132; never
# Debian's binaryen 108, whose output fails at load time). The module
# imports nothing and needs no JS glue beyond src/ts/core.ts, so wasm-bindgen
# is not involved in the package (the wasm test layers still use it).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
command -v wasm-opt >/dev/null || { echo "build: wasm-opt missing; run scripts/setup.sh" >&2; exit 1; }

out=pkg
rm -rf "$out" pkg-node pkg-web
mkdir -p "$out"
target=target/wasm-release
for feature in first full; do
  case $feature in
    first) file=insitu_bg.wasm ;;
    full) file=insitu_full.wasm ;;
  esac
  echo "build: cargo --features $feature -> $out/$file"
  CARGO_TARGET_DIR=$target cargo build --quiet --lib --release --target wasm32-unknown-unknown \
    --no-default-features --features "$feature"
  wasm-opt -Oz --converge --strip-debug --strip-producers --enable-bulk-memory --enable-nontrapping-float-to-int \
    --enable-sign-ext --enable-mutable-globals --enable-multivalue \
    "$target/wasm32-unknown-unknown/release/insitu.wasm" -o "$out/$file"
done
node scripts/package.mjs "$out"
