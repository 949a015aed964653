// The browser phone end to end in static mode: the page on one loopback origin, the real
// service (`demo`) on another, so the browser makes a real CORS preflight; Chromium runs the
// real @telnyx/webrtc SDK, whose signaling socket Playwright answers as Telnyx would.

import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { after, before, test } from "node:test";

import {
  ARTIFACTS_DIR,
  CONFIGURED_TURN,
  LOOPBACK_ICE,
  launchChromium,
  openPhone,
  placeCall,
  relaysOf,
  servePage,
  startService,
  statusWhen,
} from "./harness.mjs";

let page;
let foreignPage;
let service;
let browser;
let demoLink;

before(async () => {
  [page, foreignPage] = await Promise.all([servePage(), servePage()]);
  service = await startService(["demo"], { CORS_ALLOWED_ORIGINS: page.origin, ...LOOPBACK_ICE });
  demoLink = new URL(
    await service.waitFor("link to the browser phone", (line) =>
      /^http:\/\/127\.0\.0\.1:5173\/#/.test(line.trim()) ? line.trim() : undefined,
    ),
  );
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await service?.stop();
  await Promise.all([page?.close(), foreignPage?.close()]);
});

/** What the service answers a bearer token, fetched outside the browser. */
async function serviceAnswer(token, from = service) {
  const response = await fetch(`${from.url}/credentials`, {
    headers: { Authorization: `Bearer ${token}` },
  });
  return { status: response.status, body: await response.json() };
}

/** `METHOD path` of every request the service logged, in order. */
function requestsSeen() {
  return service
    .events()
    .filter((event) => event.message === "finished processing request")
    .map((event) => `${event.method} ${event.path}`);
}

test("demo prints a link with the service's address and a token", () => {
  const fragment = new URLSearchParams(demoLink.hash.slice(1));
  assert.equal(fragment.get("api"), service.url);
  assert.match(fragment.get("access_token"), /^[\w-]+\.[\w-]+\.[\w-]+$/);
});

test("the SDK logs in with the credential the service issued, and the phone gets ready", async () => {
  const token = new URLSearchParams(demoLink.hash.slice(1)).get("access_token");
  const { body } = await serviceAnswer(token);
  const issued = body.credential;
  const phone = await openPhone(browser, page.origin, demoLink.hash.slice(1));
  try {
    const login = await phone.signaling.nthLogin(1);
    assert.equal(login.login, issued.username);
    assert.equal(login.passwd, issued.password);
    assert.equal(login.login_token, undefined);

    assert.equal(await statusWhen(phone.tab, "ready"), "Ready");
    assert.ok(await phone.tab.locator("#call").isEnabled(), "Start Call is enabled when ready");
    assert.equal(new URL(phone.tab.url()).hash, "", "the token is taken out of the address bar");
    // Authorization makes the request non-simple: the browser asked first.
    const seen = requestsSeen();
    const preflight = seen.indexOf("OPTIONS /credentials");
    assert.ok(preflight >= 0 && seen.indexOf("GET /credentials", preflight) > preflight, seen.join("\n"));

    mkdirSync(ARTIFACTS_DIR, { recursive: true });
    await phone.tab.screenshot({ path: `${ARTIFACTS_DIR}/browser-phone-ready.png` });

    // No TURN credentials configured: the answer has no ice_servers, so the call's peer
    // connection keeps the SDK's own relays, TURN over TLS on 443 among them, with credentials.
    assert.equal(issued.ice_servers, undefined);
    const config = await placeCall(phone);
    assertSdkRelays(config);
    assert.deepEqual(phone.strays, []);
  } finally {
    await phone.close();
  }
});

/** The SDK's own relays (`DEFAULT_PROD_ICE_SERVERS`): none of ours, TLS on 443 among them. */
function assertSdkRelays(config) {
  const relays = relaysOf(config);
  const urls = relays.flatMap((server) => [server.urls].flat());
  assert.ok(urls.includes("turns:turn.telnyx.com:443"), JSON.stringify(config.iceServers));
  assert.ok(!JSON.stringify(config.iceServers).includes("127.0.0.1"), JSON.stringify(config.iceServers));
}

test("with TURN credentials configured, a call's peer connection gets the service's relay", async () => {
  const configured = await startService(["demo"], {
    CORS_ALLOWED_ORIGINS: page.origin,
    ...LOOPBACK_ICE,
    ...CONFIGURED_TURN,
  });
  try {
    const link = await configured.waitFor("link to the browser phone", (line) =>
      /^http:\/\/127\.0\.0\.1:5173\/#/.test(line.trim()) ? line.trim() : undefined,
    );
    const fragment = new URL(link).hash.slice(1);
    const { body } = await serviceAnswer(new URLSearchParams(fragment).get("access_token"), configured);
    const turn = body.credential.ice_servers.find((server) => server.urls.some((url) => url.startsWith("turn")));
    assert.equal(turn.username, CONFIGURED_TURN.TELNYX_TURN_USERNAME);
    const phone = await openPhone(browser, page.origin, fragment);
    try {
      assert.equal(await statusWhen(phone.tab, "ready"), "Ready");
      const config = await placeCall(phone);
      assert.deepEqual(config.iceServers, body.credential.ice_servers);
      assert.deepEqual(relaysOf(config), [turn]);
      assert.deepEqual(phone.strays, []);
    } finally {
      await phone.close();
    }
  } finally {
    await configured.stop();
  }
});

test("a rejected token shows the service's own sentence", async () => {
  const token = new URLSearchParams(demoLink.hash.slice(1)).get("access_token");
  const [header, payload, signature] = token.split(".");
  const forged = `${header}.${payload}.${"A".repeat(signature.length)}`;
  const refusal = await serviceAnswer(forged);
  assert.equal(refusal.status, 401);
  assert.equal(refusal.body.code, "invalid_token");

  const phone = await openPhone(browser, page.origin, `api=${service.url}&access_token=${forged}`);
  try {
    assert.equal(await statusWhen(phone.tab, "error"), refusal.body.error);
    assert.ok(await phone.tab.locator("#call").isDisabled());
    assert.equal(phone.signaling.logins.length, 0);
  } finally {
    await phone.close();
  }
});

test("a page on an origin the service does not list is refused by the browser", async () => {
  const before = requestsSeen().length;
  const phone = await openPhone(browser, foreignPage.origin, demoLink.hash.slice(1));
  try {
    const text = await statusWhen(phone.tab, "error");
    assert.match(text, /^Cannot reach the credentials service at /);
    assert.ok(text.includes(foreignPage.origin), text);
    assert.ok(await phone.tab.locator("#call").isDisabled());
    assert.equal(phone.signaling.logins.length, 0);
    // The service was up and answered the preflight; the browser withheld the answer.
    assert.ok(requestsSeen().slice(before).includes("OPTIONS /credentials"));
    assert.ok(
      phone.consoleLines.some((line) => line.includes("has been blocked by CORS policy")),
      phone.consoleLines.join("\n"),
    );
  } finally {
    await phone.close();
  }
});
