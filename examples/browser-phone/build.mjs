// Bundles the page with esbuild: `node build.mjs` writes public/assets/, `node build.mjs --serve`
// serves public/ on http://127.0.0.1:5173 and rebuilds on every request.
//
// Configuration comes from the environment at build time:
//   CREDENTIALS_API    where telnyx-webrtc-credentials runs (default http://127.0.0.1:8080)
//   SUPABASE_URL       your project URL; with SUPABASE_ANON_KEY, tokens come from supabase-js
//   SUPABASE_ANON_KEY  your project's anon (publishable) key
//   PORT               the port of --serve (default 5173)

import * as esbuild from "esbuild";
import { fileURLToPath } from "node:url";

const here = fileURLToPath(new URL(".", import.meta.url));

export const PUBLIC_DIR = `${here}public`;

/** The esbuild options for the page, with the page's configuration baked in. */
export function buildOptions(env = process.env, outdir = `${PUBLIC_DIR}/assets`) {
  const config = {
    credentialsApi: env.CREDENTIALS_API || "http://127.0.0.1:8080",
    supabaseUrl: env.SUPABASE_URL || "",
    supabaseAnonKey: env.SUPABASE_ANON_KEY || "",
  };
  return {
    entryPoints: { phone: `${here}src/phone.js` },
    bundle: true,
    format: "esm",
    target: "es2022",
    sourcemap: true,
    minify: true,
    outdir,
    define: { __PHONE_CONFIG__: JSON.stringify(config) },
    logLevel: "warning",
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (process.argv.includes("--serve")) {
    const context = await esbuild.context(buildOptions());
    const port = Number(process.env.PORT || 5173);
    await context.serve({ servedir: PUBLIC_DIR, host: "127.0.0.1", port });
    console.log(`Serving the browser phone on http://127.0.0.1:${port}/ (Ctrl-C to stop)`);
  } else {
    await esbuild.build(buildOptions());
  }
}
