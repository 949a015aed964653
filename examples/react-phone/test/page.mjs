// The React phone built by Vite (into target/e2e/react-phone/) and served from its own
// loopback origin, for the end-to-end tests. The rest of the harness (the service, the
// providers' stand-ins, Chromium, Telnyx's signaling) is examples/browser-phone's.

import { once } from "node:events";
import { readFile } from "node:fs/promises";
import { createServer } from "node:http";
import { extname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";

import { build } from "vite";

const here = fileURLToPath(new URL("..", import.meta.url));
const repository = fileURLToPath(new URL("../../../", import.meta.url));
const OUT_DIR = `${repository}target/e2e/react-phone`;

const TYPES = { ".html": "text/html", ".js": "text/javascript", ".map": "application/json", ".css": "text/css" };

/**
 * Builds the page once (the service address and token come in the URL fragment), in
 * development mode: React's development build, where StrictMode mounts, unmounts and mounts
 * again, as it does on a developer's machine.
 */
export async function buildPage() {
  await build({
    root: here,
    configFile: `${here}vite.config.mjs`,
    mode: "development",
    define: { "process.env.NODE_ENV": JSON.stringify("development") },
    build: { outDir: OUT_DIR, emptyOutDir: true, minify: false },
    logLevel: "warn",
  });
  return OUT_DIR;
}

/** Serves `dir` on http://127.0.0.1:<random port>. */
export async function servePage(dir) {
  const server = createServer(async (request, response) => {
    const path = new URL(request.url, "http://127.0.0.1").pathname;
    const file = join(dir, normalize(path === "/" ? "/index.html" : path));
    try {
      const body = await readFile(file);
      response.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream" });
      response.end(body);
    } catch {
      response.writeHead(404).end();
    }
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return { origin: `http://127.0.0.1:${server.address().port}`, close: () => server.close() };
}
