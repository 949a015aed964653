// The browser phone end to end in static mode: the page on one loopback origin, the real
// service (`demo`) on another, so the browser makes a real CORS preflight; Chromium runs the
// real @telnyx/webrtc SDK, whose signaling socket Playwright answers as Telnyx would.

import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { after, before, test } from "node:test";

import {
  ARTIFACTS_DIR,
  LOOPBACK_ICE,
  launchChromium,
  openPhone,
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
async function serviceAnswer(token) {
  const response = await fetch(`${service.url}/credentials`, {
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

    // A call hands the service's ICE servers, TURN credential included, to the peer connection.
    await phone.tab.fill("#number", "+15551234567");
    await phone.tab.click("#call");
    await phone.tab.waitForFunction(() => window.peerConnectionConfigs.length > 0);
    const [config] = await phone.tab.evaluate(() => window.peerConnectionConfigs);
    for (const server of issued.ice_servers) {
      assert.ok(
        config.iceServers.some((given) => JSON.stringify(given.urls) === JSON.stringify(server.urls)
          && given.username === server.username && given.credential === server.credential),
        `${JSON.stringify(server)} not in ${JSON.stringify(config.iceServers)}`,
      );
    }
    assert.deepEqual(phone.strays, []);
  } finally {
    await phone.close();
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
