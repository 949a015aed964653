// The browser snippets of README.md and docs/, run as pasted: every ```js block is bundled as
// it stands, with only the settings it asks the reader to fill in (the service's address, the
// Supabase project's URL and anon key) pointed at local stand-ins, and run in Chromium against
// the real service in per_user mode. A signed-in Supabase session is put where supabase-js
// keeps it (localStorage), so the snippet's own getSession() finds it.

import assert from "node:assert/strict";
import { once } from "node:events";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { createServer } from "node:http";
import { fileURLToPath } from "node:url";
import { after, before, describe, test } from "node:test";

import * as esbuild from "esbuild";

import { LOOPBACK_ICE, eventually, launchChromium, openPhone, startPerUserService } from "./harness.mjs";

const here = fileURLToPath(new URL("..", import.meta.url));
const repository = fileURLToPath(new URL("../../../", import.meta.url));

/** The settings a snippet must define, by the placeholder value it gives them. */
const SETTINGS = {
  credentialsApi: "https://credentials.example.com",
  supabaseUrl: "https://your-project-ref.supabase.co",
  anonKey: "your-anon-key",
};

/** Every ```js (or ```jsx) block of README.md and docs/*.md, with where it comes from. */
function snippets(language = "js") {
  const docs = existsSync(`${repository}docs`) ? readdirSync(`${repository}docs`) : [];
  const files = ["README.md", ...docs.map((name) => `docs/${name}`)];
  return files
    .filter((file) => file.endsWith(".md"))
    .flatMap((file) =>
      [...readFileSync(`${repository}${file}`, "utf8").matchAll(new RegExp(`^\`\`\`${language}\\n([\\s\\S]*?)^\`\`\`$`, "gm"))].map(
        (match, n) => ({ name: `${file}, ${language} block ${n + 1}`, code: match[1] }),
      ),
    );
}

/**
 * A page on its own loopback origin, which serves `code` once `load` has bundled it with the
 * example's packages, its settings replaced: the service must know the page's origin (CORS)
 * before the snippet can know the service's address.
 */
async function snippetPage() {
  let script = "";
  const server = createServer((request, response) => {
    if (request.url === "/snippet.js") {
      response.writeHead(200, { "content-type": "text/javascript" });
      return response.end(script);
    }
    response.writeHead(200, { "content-type": "text/html" });
    response.end('<!doctype html><meta charset="utf-8"><title>snippet</title><script type="module" src="/snippet.js"></script>');
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return {
    origin: `http://127.0.0.1:${server.address().port}`,
    /**
     * Bundles `code`; a React snippet (`entry` given) is imported as "./snippet.jsx" by `entry`,
     * which mounts it.
     */
    async load(code, settings, entry) {
      let filled = code;
      for (const [key, placeholder] of Object.entries(SETTINGS)) {
        assert.ok(filled.includes(`"${placeholder}"`), `the snippet does not define ${key} as "${placeholder}"`);
        filled = filled.replaceAll(`"${placeholder}"`, JSON.stringify(settings[key]));
      }
      const snippetModule = {
        name: "snippet",
        setup(build) {
          build.onResolve({ filter: /^\.\/snippet\.jsx$/ }, () => ({ path: "snippet.jsx", namespace: "snippet" }));
          build.onLoad({ filter: /.*/, namespace: "snippet" }, () => ({ contents: filled, loader: "jsx", resolveDir: here }));
        },
      };
      const result = await esbuild.build({
        stdin: entry
          ? { contents: entry, resolveDir: here, sourcefile: "entry.jsx", loader: "jsx" }
          : { contents: filled, resolveDir: here, sourcefile: "snippet.js", loader: "js" },
        plugins: [snippetModule],
        jsx: "automatic",
        define: { "process.env.NODE_ENV": '"development"' },
        // The package is linked from clients/js, which has no React of its own: its imports
        // resolve from this example's node_modules, through the link.
        preserveSymlinks: true,
        bundle: true,
        format: "esm",
        target: "es2022",
        write: false,
        logLevel: "warning",
      });
      script = result.outputFiles[0].text;
    },
    close: () => server.close(),
  };
}

/** A Supabase session as supabase-js stores it, for a project at `supabaseUrl`. */
function signedIn(supabaseUrl, accessToken) {
  const key = `sb-${new URL(supabaseUrl).hostname.split(".")[0]}-auth-token`;
  const claims = JSON.parse(Buffer.from(accessToken.split(".")[1], "base64url"));
  const session = {
    access_token: accessToken,
    refresh_token: "refresh-token-the-test-never-uses",
    token_type: "bearer",
    expires_in: claims.exp - claims.iat,
    expires_at: claims.exp,
    user: { id: claims.sub, aud: "authenticated", role: "authenticated" },
  };
  return { [key]: JSON.stringify(session) };
}

let browser;
before(async () => {
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
});

const blocks = snippets();
test("README.md and docs/ hold browser snippets to run", () => {
  assert.ok(blocks.length >= 1, "no ```js block found");
});

for (const snippet of blocks) {
  describe(snippet.name, () => {
    test("a signed-in user's phone logs in with the minted token, and renews it before it expires", async () => {
      await withSnippet(snippet, {}, async ({ service, phone }) => {
        const first = await phone.signaling.nthLogin(1);
        assert.equal(first.login_token, service.telnyx.tokens[0]);
        await eventually("ready to call", () => phone.consoleLines.includes("ready to call"));
        // The SDK warns at once (the token lives 3 s); asked that early the service hands back
        // the same token, so the snippet asks again and logs in with the new one.
        const second = await phone.signaling.nthLogin(2, 30_000);
        assert.equal(second.login_token, service.telnyx.tokens[1]);
        assert.deepEqual(phone.pageErrors, []);
        assert.deepEqual(phone.strays, []);
      });
    });

    test("a 429 while renewing waits as Retry-After says, then renews", async () => {
      // One request every 3 s: the renewal right after the first fetch is refused.
      await withSnippet(snippet, { env: { RATE_LIMIT_PER_USER: "20/min,burst=1" } }, async ({ service, phone }) => {
        const second = await phone.signaling.nthLogin(2, 30_000);
        assert.equal(second.login_token, service.telnyx.tokens[1]);
        // Refused once, then it waited as told instead of asking again at once.
        const seen = service.requestsSeen().filter((line) => line.startsWith("GET /credentials"));
        assert.deepEqual(seen.slice(0, 3), ["GET /credentials 200", "GET /credentials 429", "GET /credentials 200"]);
        assert.deepEqual(phone.pageErrors, []);
      });
    });

    test("without a Supabase session it says to sign in, and calls nothing", async () => {
      await withSnippet(snippet, { session: false }, async ({ service, phone }) => {
        await eventually("an error", () => phone.pageErrors.length > 0);
        assert.match(phone.pageErrors[0], /Sign in first/);
        assert.equal(phone.signaling.logins.length, 0);
        assert.deepEqual(service.requestsSeen(), []);
      });
    });

    test("a refused token throws the service's own sentence", async () => {
      await withSnippet(snippet, { forged: true }, async ({ service, phone, token }) => {
        const refusal = await fetch(`${service.url}/credentials`, { headers: { Authorization: `Bearer ${token}` } });
        const { error } = await refusal.json();
        await eventually("an error", () => phone.pageErrors.length > 0);
        assert.equal(phone.pageErrors[0], error);
        assert.equal(phone.signaling.logins.length, 0);
      });
    });
  });
}

/**
 * Mounts the React snippet's `Phone` as the page's entry, in React's development build;
 * `unmountPhone()` unmounts it. Not under StrictMode: the snippet puts what may run under it
 * there itself, below @telnyx/react-client's provider, which may not (docs/browser.md).
 */
const REACT_ENTRY = `
import { createRoot } from "react-dom/client";
import { Phone } from "./snippet.jsx";
const element = document.createElement("div");
document.body.append(element);
const root = createRoot(element);
root.render(<Phone />);
window.unmountPhone = () => root.unmount();
`;

describe("docs React snippet", () => {
  const reactBlocks = snippets("jsx");
  test("docs/ hold a React snippet", () => assert.ok(reactBlocks.length >= 1));
  for (const snippet of reactBlocks) {
    test(`${snippet.name}: one connection, renewed on it, closed on unmount`, async () => {
      await withSnippet(snippet, { entry: REACT_ENTRY }, async ({ service, phone }) => {
        await phone.tab.getByText("Ready").waitFor({ timeout: 20_000 });
        await eventually("one open signaling socket", () => phone.signaling.openSockets === 1);
        const logins = phone.signaling.logins.length;
        const renewed = await phone.signaling.nthLogin(logins + 1, 30_000);
        assert.equal(renewed.login_token, service.telnyx.tokens.at(-1));
        assert.equal(phone.signaling.openSockets, 1);
        assert.equal(phone.signaling.socketsOpened, 1, "one TelnyxRTC, never reconnected");

        await phone.tab.evaluate(() => window.unmountPhone());
        await eventually("the socket to close", () => phone.signaling.openSockets === 0);
        // No renewal keeps running for the unmounted phone.
        const asked = service.requestsSeen().length;
        await new Promise((resolve) => setTimeout(resolve, 6_000));
        assert.equal(service.requestsSeen().length, asked);
        assert.deepEqual(phone.pageErrors, []);
        assert.deepEqual(phone.strays, []);
      });
    });
  }
});

/** Runs `check` with the snippet's page open against a fresh service. */
async function withSnippet(snippet, { env = {}, session = true, forged = false, entry }, check) {
  const page = await snippetPage();
  // Tokens that live 3 s, so the renewal comes at once; no propagation wait, which would
  // outlast them (per-user.test.mjs covers the wait).
  const service = await startPerUserService({
    tokenLifetimes: [3],
    env: { ...LOOPBACK_ICE, CORS_ALLOWED_ORIGINS: page.origin, TELNYX_CREDENTIAL_PROPAGATION_SECS: "0", ...env },
  });
  let phone;
  try {
    await page.load(snippet.code, {
      credentialsApi: service.url,
      supabaseUrl: service.supabaseUrl,
      anonKey: "anon-key-of-the-stand-in",
    }, entry);
    let token = service.accessToken();
    if (forged) token = `${token.slice(0, token.lastIndexOf(".") + 1)}${"A".repeat(43)}`;
    const storage = session ? signedIn(service.supabaseUrl, token) : {};
    phone = await openPhone(browser, page.origin, "", { storage });
    await check({ service, phone, token });
  } finally {
    await phone?.close();
    await service.stop();
    page.close();
  }
}
