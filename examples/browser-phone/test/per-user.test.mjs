// The browser phone end to end in per_user mode: the real service (`serve`) minting login tokens
// from a local Telnyx API stand-in, the page logging the SDK in with them, and a fresh token
// fetched and used when the SDK warns that the current one is about to expire.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import {
  LOOPBACK_ICE,
  launchChromium,
  openPhone,
  servePage,
  startPerUserService,
  statusWhen,
} from "./harness.mjs";

let page;
let service;
let browser;

before(async () => {
  page = await servePage();
  // The first login token lives 3 s: within the SDK's 120 s warning window from the start.
  service = await startPerUserService({
    tokenLifetimes: [3],
    env: { CORS_ALLOWED_ORIGINS: page.origin, ...LOOPBACK_ICE },
  });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await service?.stop();
  await page?.close();
});

test("the SDK logs in with the minted login token, and with a fresh one when it warns of expiry", async () => {
  const { telnyx } = service;
  const phone = await openPhone(
    browser,
    page.origin,
    `api=${service.url}&access_token=${service.accessToken()}`,
  );
  try {
    const first = await phone.signaling.nthLogin(1);
    assert.equal(first.login_token, telnyx.tokens[0]);
    assert.equal(first.login, undefined, "no SIP username in per_user mode");
    assert.equal(first.passwd, undefined, "no SIP password in per_user mode");
    assert.equal(await statusWhen(phone.tab, "ready"), "Ready");
    assert.ok(await phone.tab.locator("#call").isEnabled());

    // TOKEN_EXPIRING_SOON fires at once; the service renews only after half the token's life,
    // so the page asks again until it gets a new token, then logs in with it on the same socket.
    const second = await phone.signaling.nthLogin(2, 30_000);
    assert.equal(telnyx.tokens.length, 2, "one token minted per renewal");
    assert.equal(second.login_token, telnyx.tokens[1]);
    assert.notEqual(second.login_token, first.login_token);
    assert.equal(await statusWhen(phone.tab, "ready"), "Ready");
    assert.equal(telnyx.credentials.length, 1, "one telephony credential for the user");
    assert.deepEqual(phone.strays, []);
  } finally {
    await phone.close();
  }
});

test("a 429 while renewing is asked again when Retry-After says, and the phone stays ready", async () => {
  // One request every 3 s: the renewal right after the first fetch is refused.
  const limited = await startPerUserService({
    tokenLifetimes: [3],
    env: { CORS_ALLOWED_ORIGINS: page.origin, RATE_LIMIT_PER_USER: "20/min,burst=1", ...LOOPBACK_ICE },
  });
  const phone = await openPhone(browser, page.origin, `api=${limited.url}&access_token=${limited.accessToken()}`);
  try {
    await phone.signaling.nthLogin(1);
    const second = await phone.signaling.nthLogin(2, 30_000);
    assert.equal(second.login_token, limited.telnyx.tokens[1]);
    const seen = limited.requestsSeen().filter((line) => line.startsWith("GET /credentials"));
    assert.deepEqual(seen.slice(0, 3), ["GET /credentials 200", "GET /credentials 429", "GET /credentials 200"]);
    assert.equal(await statusWhen(phone.tab, "ready"), "Ready");
  } finally {
    await phone.close();
    await limited.stop();
  }
});
