// The browser phone end to end in per_user mode: the real service (`serve`) minting login tokens
// from a local Telnyx API stand-in, the page logging the SDK in with them, a fresh token fetched
// and used when the SDK warns that the current one is about to expire, a brand-new user's first
// login waiting until Telnyx has propagated the new credential, and the relays a call gets.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import {
  CONFIGURED_TURN,
  LOOPBACK_ICE,
  launchChromium,
  openPhone,
  placeCall,
  relaysOf,
  servePage,
  startPerUserService,
  statusWhen,
} from "./harness.mjs";

let page;
let browser;
const services = [];

before(async () => {
  page = await servePage();
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await Promise.all(services.map((service) => service.stop()));
  await page?.close();
});

async function service({ tokenLifetimes, env = {} } = {}) {
  const started = await startPerUserService({
    tokenLifetimes,
    env: { CORS_ALLOWED_ORIGINS: page.origin, ...LOOPBACK_ICE, ...env },
  });
  services.push(started);
  return started;
}

test("the SDK logs in with the minted login token, and with a fresh one when it warns of expiry", async () => {
  // The first login token lives 3 s: within the SDK's 120 s warning window from the start. The
  // credential propagates for 1 s, and the signaling stand-in refuses any login before that.
  const { url, telnyx, accessToken } = await service({
    tokenLifetimes: [3],
    env: { TELNYX_CREDENTIAL_PROPAGATION_SECS: "1" },
  });
  const phone = await openPhone(browser, page.origin, `api=${url}&access_token=${accessToken()}`, {
    telnyx,
    propagationMs: 1_000,
  });
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
    assert.deepEqual(phone.signaling.refused, []);

    // No TURN credentials configured: no ice_servers, and the call keeps the SDK's own relays.
    const config = await placeCall(phone);
    const urls = relaysOf(config).flatMap((server) => [server.urls].flat());
    assert.ok(urls.includes("turns:turn.telnyx.com:443"), JSON.stringify(config.iceServers));
    assert.ok(!JSON.stringify(config.iceServers).includes("127.0.0.1"));
    assert.deepEqual(phone.strays, []);
  } finally {
    await phone.close();
  }
});

test("a 429 while renewing is asked again when Retry-After says, and the phone stays ready", async () => {
  // One request every 3 s: the renewal right after the first fetch is refused. No propagation
  // wait, which would outlast the 3 s token.
  const limited = await startPerUserService({
    tokenLifetimes: [3],
    env: {
      CORS_ALLOWED_ORIGINS: page.origin,
      RATE_LIMIT_PER_USER: "20/min,burst=1",
      TELNYX_CREDENTIAL_PROPAGATION_SECS: "0",
      ...LOOPBACK_ICE,
    },
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

test("a brand-new user's page reaches Ready on the first login, and a call gets the configured relay", async () => {
  // The default propagation wait (5 s, as Telnyx's JWT guide advises) against a signaling
  // stand-in that refuses logins for credentials younger than that.
  const { url, telnyx, accessToken } = await service({ env: CONFIGURED_TURN });
  const token = accessToken();
  const phone = await openPhone(browser, page.origin, `api=${url}&access_token=${token}`, {
    telnyx,
    propagationMs: 5_000,
  });
  try {
    assert.equal(await statusWhen(phone.tab, "ready"), "Ready");
    assert.equal(phone.signaling.logins.length, 1, "the first login worked");
    assert.deepEqual(phone.signaling.refused, []);
    const created = telnyx.requests.find((request) => request.method === "POST" && request.path.endsWith("/telephony_credentials"));
    assert.ok(created, "the user's credential was created on this visit");
    assert.ok(telnyx.credentials[0].expires_at, "with a lifetime");

    const answer = await (await fetch(`${url}/credentials`, { headers: { Authorization: `Bearer ${token}` } })).json();
    const config = await placeCall(phone);
    assert.deepEqual(config.iceServers, answer.credential.ice_servers);
    const [relay] = relaysOf(config);
    assert.equal(relay.username, CONFIGURED_TURN.TELNYX_TURN_USERNAME);
    assert.equal(relay.credential, CONFIGURED_TURN.TELNYX_TURN_PASSWORD);
    assert.deepEqual(phone.strays, []);
  } finally {
    await phone.close();
  }
});

test("without the propagation wait, the first login of a brand-new user is refused", async () => {
  // What the wait is for: the same signaling stand-in, a service told not to wait.
  const { url, telnyx, accessToken } = await service({ env: { TELNYX_CREDENTIAL_PROPAGATION_SECS: "0" } });
  const phone = await openPhone(browser, page.origin, `api=${url}&access_token=${accessToken()}`, {
    telnyx,
    propagationMs: 5_000,
  });
  try {
    await phone.signaling.nthLogin(1);
    assert.equal(phone.signaling.refused.length, 1);
    assert.ok(phone.signaling.refused[0].ageMs < 5_000);
    assert.notEqual(await phone.tab.locator("#status").getAttribute("data-state"), "ready");
  } finally {
    await phone.close();
  }
});
