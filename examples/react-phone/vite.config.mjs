// Vite bundles the page locally (no CDN): `npm run build` writes dist/, `npm run serve` serves
// it on http://127.0.0.1:5173 (the port `demo` links to) with hot reload.
//
// Configuration comes from the environment at build time:
//   CREDENTIALS_API    where telnyx-webrtc-credentials runs (default http://127.0.0.1:8080)
//   SUPABASE_URL       your project URL; with SUPABASE_ANON_KEY, tokens come from supabase-js
//   SUPABASE_ANON_KEY  your project's anon (publishable) key

import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

/** The page's settings, baked in as __PHONE_CONFIG__. */
export function phoneConfig(env = process.env) {
  return {
    credentialsApi: env.CREDENTIALS_API || "http://127.0.0.1:8080",
    supabaseUrl: env.SUPABASE_URL || "",
    supabaseAnonKey: env.SUPABASE_ANON_KEY || "",
  };
}

export default defineConfig({
  plugins: [react()],
  define: { __PHONE_CONFIG__: JSON.stringify(phoneConfig()) },
  // The package is linked from clients/js, which has no React of its own: its imports of react
  // and @telnyx/react-client must be this app's, or the page would hold two Reacts.
  resolve: { dedupe: ["react", "react-dom", "@telnyx/react-client", "@telnyx/webrtc"] },
  // @telnyx/webrtc alone is some 600 KB minified.
  build: { target: "es2022", sourcemap: true, chunkSizeWarningLimit: 1_000 },
  logLevel: "warn",
});
