// Minify the JavaScript of a built package directory in place: the
// wasm-bindgen glue and the snippets (src/wasm/fast.js, inline snippets).
// Bundlers minify in production anyway; shipping it minified makes the size
// report match what a site serves, and keeps the source readable in src/.
// Usage: node scripts/minify.mjs pkg [pkg-web pkg-node ...]
import fs from "node:fs";
import path from "node:path";
import { minify } from "terser";

const dirs = process.argv.slice(2);
if (dirs.length === 0) {
  console.error("usage: node scripts/minify.mjs <package dir>...");
  process.exit(2);
}

function jsFiles(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return jsFiles(p);
    return e.name.endsWith(".js") ? [p] : [];
  });
}

for (const dir of dirs) {
  let before = 0;
  let after = 0;
  for (const file of jsFiles(dir)) {
    const code = fs.readFileSync(file, "utf8");
    const module = /^\s*(export|import)\s/m.test(code);
    const out = await minify(code, {
      module,
      compress: { passes: 2 },
      mangle: true,
      // Keep the pointer to the type declarations (Deno, JSR) and licences.
      format: { comments: /@ts-self-types|@license|@preserve/ },
    });
    if (typeof out.code !== "string" || out.code.length === 0) {
      throw new Error(`minify: ${file} produced no output`);
    }
    fs.writeFileSync(file, out.code);
    before += code.length;
    after += out.code.length;
  }
  console.log(`minify: ${dir}: ${before} -> ${after} bytes of JavaScript`);
}
