// Prints what each entry point adds to a page: bundled and minified with esbuild, then gzipped
// (level 9). React and @telnyx/react-client are the app's own, so they are left out.
//   node scripts/size.mjs            prints the sizes
//   node scripts/size.mjs --check    also fails if the core is over its 5 KB budget

import { gzipSync } from "node:zlib";
import { fileURLToPath } from "node:url";

import * as esbuild from "esbuild";

const BUDGET_BYTES = 5 * 1024;
const here = fileURLToPath(new URL("..", import.meta.url));

async function size(entry) {
  const result = await esbuild.build({
    entryPoints: [`${here}${entry}`],
    bundle: true,
    minify: true,
    format: "esm",
    target: "es2022",
    external: ["react", "@telnyx/react-client"],
    write: false,
    logLevel: "warning",
  });
  const code = result.outputFiles[0].contents;
  return { minified: code.length, gzipped: gzipSync(code, { level: 9 }).length };
}

const kb = (bytes) => `${(bytes / 1024).toFixed(2)} KB`;
const core = await size("src/index.js");
const react = await size("src/react.js");
console.log(`core  (src/index.js): ${kb(core.minified)} minified, ${kb(core.gzipped)} minified+gzip (budget ${kb(BUDGET_BYTES)})`);
console.log(`react (src/react.js): ${kb(react.minified)} minified, ${kb(react.gzipped)} minified+gzip, the core's renewal included`);
if (process.argv.includes("--check") && core.gzipped > BUDGET_BYTES) {
  console.error(`The core is ${kb(core.gzipped)}, over its ${kb(BUDGET_BYTES)} budget.`);
  process.exit(1);
}
