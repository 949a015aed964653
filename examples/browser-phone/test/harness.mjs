// The end-to-end harness: the real service binary, the page on its own loopback origin, Debian's
// Chromium driven by playwright-core, and a stand-in for Telnyx's signaling server. The
// providers the service itself calls in per_user mode are in fake-providers.mjs.
//
// Everything runs on 127.0.0.1; Chromium starts with the flags that keep it off the network.

import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

import * as esbuild from "esbuild";
import { chromium } from "playwright-core";

import { PUBLIC_DIR, buildOptions } from "../build.mjs";
import { startFakeSupabase, startFakeTelnyx, supabaseAccessToken } from "./fake-providers.mjs";

const repository = fileURLToPath(new URL("../../../", import.meta.url));

/** Where screenshots and other artifacts go: under target/, which git ignores. */
export const ARTIFACTS_DIR = `${repository}target/e2e`;

const SERVICE_BINARY =
  process.env.SERVICE_BINARY || `${repository}target/debug/telnyx-webrtc-credentials`;

/** Every wait is bounded, so a broken build fails the test instead of hanging CI. */
const STARTUP_TIMEOUT_MS = 20_000;

/** ICE servers on loopback, so a call's ICE gathering sends nothing off the machine. */
export const LOOPBACK_ICE = {
  TELNYX_STUN_URLS: "stun:127.0.0.1:3478",
  TELNYX_TURN_URLS: "turn:127.0.0.1:3478?transport=udp",
};

/** The chromium flags of the machine notes: headless, and nothing that reaches the internet. */
const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  // No name resolves but loopback's: whatever the page tries, nothing leaves the machine.
  "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
  // A call asks for the microphone: a fake device, granted without a prompt.
  "--use-fake-ui-for-media-stream",
  "--use-fake-device-for-media-stream",
];

/** Serves the bundled page on its own origin, http://127.0.0.1:<random port>. */
export async function servePage() {
  const context = await esbuild.context(buildOptions({}, `${PUBLIC_DIR}/assets`));
  const { port } = await context.serve({ servedir: PUBLIC_DIR, host: "127.0.0.1", port: 0 });
  return { origin: `http://127.0.0.1:${port}`, close: () => context.dispose() };
}

/**
 * Runs the service binary with `args` and exactly `env` (plus PATH), JSON logs on, and collects
 * its output lines. Resolves once it logs that it is listening.
 */
export async function startService(args, env) {
  const child = spawn(SERVICE_BINARY, args, {
    env: { PATH: process.env.PATH, BIND_ADDR: "127.0.0.1:0", LOG_FORMAT: "json", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines = [];
  const waiters = new Set();
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on("line", (line) => {
      lines.push(line);
      for (const waiter of waiters) waiter();
    });
  }
  const service = {
    lines,
    /** Waits for the first output line `pick` returns something for. */
    waitFor(what, pick) {
      return new Promise((resolve, reject) => {
        const check = () => {
          for (const line of lines) {
            const found = pick(line);
            if (found !== undefined) {
              cleanup();
              resolve(found);
              return;
            }
          }
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`no ${what} from the service within ${STARTUP_TIMEOUT_MS} ms:\n${lines.join("\n")}`));
        }, STARTUP_TIMEOUT_MS);
        const exited = () => {
          cleanup();
          reject(new Error(`the service exited (${child.exitCode}) before ${what}:\n${lines.join("\n")}`));
        };
        const cleanup = () => {
          clearTimeout(timer);
          waiters.delete(check);
          child.off("exit", exited);
        };
        waiters.add(check);
        child.once("exit", exited);
        check();
      });
    },
    /** The service's JSON log events. */
    events() {
      return lines.flatMap((line) => {
        try {
          return [JSON.parse(line)];
        } catch {
          return [];
        }
      });
    },
    async stop() {
      if (child.exitCode === null) {
        child.kill("SIGTERM");
        await once(child, "exit");
      }
    },
  };
  const address = await service.waitFor("listening log line", (line) => {
    try {
      const event = JSON.parse(line);
      return event.message === "listening" ? event.address : undefined;
    } catch {
      return undefined;
    }
  });
  service.url = `http://${address}`;
  return service;
}

/** TURN credentials of the operator's own, for the runs that configure them. */
export const CONFIGURED_TURN = {
  TELNYX_TURN_USERNAME: "operator-turn-user",
  TELNYX_TURN_PASSWORD: "operator-turn-secret",
};

/**
 * The service in per_user mode (`serve`) against local Supabase and Telnyx stand-ins, plus
 * `env`. `tokenLifetimes` goes to the Telnyx stand-in. `accessToken()` signs in a new user.
 */
export async function startPerUserService({ tokenLifetimes, env = {} } = {}) {
  const secret = "e2e-only-legacy-jwt-secret-0123456789abcdef";
  const [supabase, telnyx] = await Promise.all([
    startFakeSupabase(),
    startFakeTelnyx({ tokenLifetimes }),
  ]);
  const service = await startService(["serve"], {
    SUPABASE_URL: supabase.url,
    SUPABASE_JWT_SECRET: secret,
    CREDENTIAL_MODE: "per_user",
    TELNYX_API_KEY: "KEY-test",
    TELNYX_API_BASE_URL: `${telnyx.url}/v2`,
    TELNYX_WEBRTC_CONNECTION_ID: "1234567890",
    ...env,
  });
  return {
    url: service.url,
    supabaseUrl: supabase.url,
    telnyx,
    /** `METHOD path status` of every request the service logged, in order. */
    requestsSeen: () =>
      service
        .events()
        .filter((event) => event.message === "finished processing request")
        .map((event) => `${event.method} ${event.path} ${event.status}`),
    accessToken: () => supabaseAccessToken({ supabaseUrl: supabase.url, secret }),
    async stop() {
      await service.stop();
      supabase.close();
      telnyx.close();
    },
  };
}

/**
 * Whether the service at `url` serves `GET /devices` (per-device credentials), by its own
 * OpenAPI document: the tests of the device list run only against a service that has it.
 */
export async function servesDevices(url) {
  const document = await (await fetch(`${url}/openapi.json`)).json();
  return Boolean(document.paths?.["/devices"]?.get);
}

/** Debian's Chromium, headless, through playwright-core (which downloads no browser). */
export function launchChromium() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
    headless: true,
    args: CHROMIUM_ARGS,
    timeout: STARTUP_TIMEOUT_MS,
  });
}

/**
 * Opens the phone on `origin` with `fragment` in a fresh browser context, behind a stand-in for
 * Telnyx's signaling server (`signaling` options: see FakeTelnyxSignaling). Requests for
 * anything but loopback (which Chromium cannot resolve here) land in `strays`. No `route()`:
 * with request interception on, Playwright answers CORS preflights itself, and the preflight
 * must be the service's.
 */
export async function openPhone(browser, origin, fragment, { storage = {}, ...signalingOptions } = {}) {
  const context = await browser.newContext();
  const tab = await context.newPage();
  const strays = [];
  const requests = [];
  context.on("request", (request) => {
    requests.push(`${request.method()} ${request.url()}`);
    if (new URL(request.url()).hostname !== "127.0.0.1") strays.push(request.url());
  });
  const signaling = new FakeTelnyxSignaling(signalingOptions);
  await signaling.attach(tab);
  // What the SDK hands RTCPeerConnection, recorded before any page script runs. The connection
  // itself is given only the loopback servers among them, so ICE gathering sends nothing off
  // the machine even when the SDK's own (Telnyx) servers are in the list.
  await tab.addInitScript(() => {
    window.peerConnectionConfigs = [];
    const Original = window.RTCPeerConnection;
    const onLoopback = (server) => [server.urls].flat().every((url) => /^(stuns?|turns?):127\.0\.0\.1[:?]/.test(url));
    window.RTCPeerConnection = function (config, ...rest) {
      window.peerConnectionConfigs.push(JSON.parse(JSON.stringify(config ?? {})));
      const kept = { ...config, iceServers: (config?.iceServers ?? []).filter(onLoopback) };
      return new Original(kept, ...rest);
    };
    window.RTCPeerConnection.prototype = Original.prototype;
  });
  // What the page finds in localStorage, such as a signed-in Supabase session.
  await tab.addInitScript((entries) => {
    for (const [key, value] of Object.entries(entries)) localStorage.setItem(key, value);
  }, storage);
  const consoleLines = [];
  tab.on("console", (message) => consoleLines.push(message.text()));
  const pageErrors = [];
  tab.on("pageerror", (error) => pageErrors.push(error.message));
  await tab.goto(`${origin}/#${fragment}`);
  return { tab, signaling, strays, requests, consoleLines, pageErrors, close: () => context.close() };
}

/** Waits until `predicate()` holds, for `what`. */
export async function eventually(what, predicate, timeoutMs = STARTUP_TIMEOUT_MS) {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`waited ${timeoutMs} ms for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** The status text once the page is in `state` (loading, ready, calling, error). */
export async function statusWhen(tab, state) {
  const output = tab.locator(`#status[data-state="${state}"]`);
  await output.waitFor({ timeout: STARTUP_TIMEOUT_MS });
  return output.textContent();
}

/** Places a call from the open phone and resolves with the `RTCPeerConnection` config. */
export async function placeCall(phone) {
  await phone.tab.fill("#number", "+15551234567");
  await phone.tab.click("#call");
  await phone.tab.waitForFunction(() => window.peerConnectionConfigs.length > 0);
  const [config] = await phone.tab.evaluate(() => window.peerConnectionConfigs);
  return config;
}

/** The TURN servers in an `RTCPeerConnection` config that come with credentials: relays. */
export function relaysOf(config) {
  return (config.iceServers ?? []).filter(
    (server) => [server.urls].flat().some((url) => /^turns?:/.test(url)) && server.username && server.credential,
  );
}

/**
 * Plays Telnyx's WebRTC signaling server (wss://rtc.telnyx.com, JSON-RPC 2.0 over a WebSocket)
 * through Playwright's WebSocket routing: no socket leaves the browser.
 *
 * The handshake follows the SDK's own expectations: `login` is answered with a session id, then
 * the server says `telnyx_rtc.clientReady`, the SDK asks `telnyx_rtc.gatewayState`, and a
 * `REGED` state is what makes the SDK emit `telnyx.ready`.
 *
 * With `telnyx` (the API stand-in) and `propagationMs`, it refuses, as Telnyx's JWT guide warns
 * it may, a login whose token belongs to a credential younger than `propagationMs`.
 *
 * A login on a socket with calls in progress (a renewal) lists them in `clientReady`'s
 * `reattached_sessions`, as a server keeping the session would: the SDK hangs up every active
 * call that list leaves out.
 */
export class FakeTelnyxSignaling {
  /** The `params` of every `login` request, in order. */
  logins = [];
  /** The `params` of every login refused because its credential was too young. */
  refused = [];

  constructor({ telnyx, propagationMs = 0 } = {}) {
    this.telnyx = telnyx;
    this.propagationMs = propagationMs;
  }

  /** How old the credential behind a login token is, in ms; undefined if unknown. */
  #credentialAge(loginToken) {
    const credential = loginToken && this.telnyx?.credentialOf(loginToken);
    return credential ? Date.now() - credential.createdAtMs : undefined;
  }

  /** Signaling sockets the page has open now, and has opened in all: one per TelnyxRTC connect. */
  openSockets = 0;
  socketsOpened = 0;
  /** The method of every request the page sent, in order (`login`, `telnyx_rtc.invite`, `telnyx_rtc.bye`, …). */
  methods = [];

  async attach(page) {
    await page.routeWebSocket(/^wss:\/\/rtc\.telnyx\.com/, (socket) => this.#serve(socket));
  }

  #serve(socket) {
    this.openSockets += 1;
    this.socketsOpened += 1;
    socket.onClose(() => {
      this.openSockets -= 1;
    });
    const send = (message) => socket.send(JSON.stringify({ jsonrpc: "2.0", ...message }));
    const calls = new Set();
    socket.onMessage((raw) => {
      const request = JSON.parse(raw);
      if (request.method) this.methods.push(request.method);
      switch (request.method) {
        case "login": {
          this.logins.push(request.params);
          const age = this.#credentialAge(request.params.login_token);
          if (age !== undefined && age < this.propagationMs) {
            this.refused.push({ ...request.params, ageMs: age });
            send({ id: request.id, error: { code: -32001, message: "Authentication Failure" } });
            break;
          }
          send({ id: request.id, result: { message: "logged in", sessid: request.params.sessid ?? randomUUID() } });
          // The calls this socket has in progress are still the session's: a server that keeps
          // the session across a login on the same socket lists them, and the SDK hangs up
          // every call that clientReady does not list (its reattach check, SESSION_NOT_REATTACHED).
          send({ id: randomUUID(), method: "telnyx_rtc.clientReady", params: { reattached_sessions: [...calls] } });
          break;
        }
        case "telnyx_rtc.invite":
          calls.add(request.params?.dialogParams?.callID);
          send({ id: request.id, result: {} });
          break;
        case "telnyx_rtc.bye":
          calls.delete(request.params?.dialogParams?.callID);
          send({ id: request.id, result: {} });
          break;
        case "telnyx_rtc.gatewayState":
          send({ id: request.id, result: { params: { state: "REGED" } } });
          break;
        default:
          if (request.method && request.id !== undefined) send({ id: request.id, result: {} });
      }
    });
  }

  /** Resolves with the params of the `count`-th login once it arrives. */
  async nthLogin(count, timeoutMs = STARTUP_TIMEOUT_MS) {
    const deadline = Date.now() + timeoutMs;
    while (this.logins.length < count) {
      if (Date.now() > deadline) throw new Error(`only ${this.logins.length} of ${count} logins arrived`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    return this.logins[count - 1];
  }
}
