// The React phone end to end, in static mode (`demo`) and in per_user mode: @telnyx/react-client's
// TelnyxRTCProvider given the credential by useTelnyxCredential, and kept logged in by
// <TelnyxCredentialRenewal>, against the real service in Chromium. What must hold: exactly one
// TelnyxRTC (one signaling socket) for the page's life, an active call up across renewals, and a
// sign-out that unmounts the provider leaving no client connected.

import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { after, before, describe, test } from "node:test";

import {
  ARTIFACTS_DIR,
  LOOPBACK_ICE,
  eventually,
  launchChromium,
  openPhone,
  startPerUserService,
  startService,
  statusWhen,
} from "../../browser-phone/test/harness.mjs";
import { buildPage, servePage } from "./page.mjs";

let page;
let browser;

before(async () => {
  page = await servePage(await buildPage());
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  page?.close();
});

/** Opens the dropdown, dials, and waits until the call is under way. */
async function placeCall(phone) {
  await phone.tab.click("#phone-toggle");
  await phone.tab.fill("#number", "+15551234567");
  await phone.tab.click("#call");
  await phone.tab.locator('#status[data-state="calling"]').waitFor({ timeout: 20_000 });
  await eventually("the invite", () => phone.signaling.methods.includes("telnyx_rtc.invite"));
}

describe("static mode (demo)", () => {
  let service;
  let fragment;
  before(async () => {
    service = await startService(["demo"], { CORS_ALLOWED_ORIGINS: page.origin, ...LOOPBACK_ICE });
    const link = await service.waitFor("link to the browser phone", (line) =>
      /^http:\/\/127\.0\.0\.1:5173\/#/.test(line.trim()) ? line.trim() : undefined,
    );
    fragment = new URL(link).hash.slice(1);
  });
  after(() => service?.stop());

  test("the provider's one client logs in with the shared identity and gets ready", async () => {
    const token = new URLSearchParams(fragment).get("access_token");
    const answer = await (await fetch(`${service.url}/credentials`, { headers: { Authorization: `Bearer ${token}` } })).json();
    const phone = await openPhone(browser, page.origin, fragment);
    try {
      assert.equal(await statusWhen(phone.tab, "ready"), "Ready");
      const [login] = phone.signaling.logins;
      assert.equal(login.login, answer.credential.username);
      assert.equal(login.passwd, answer.credential.password);
      assert.equal(phone.signaling.socketsOpened, 1);
      await placeCall(phone);
      mkdirSync(ARTIFACTS_DIR, { recursive: true });
      await phone.tab.screenshot({ path: `${ARTIFACTS_DIR}/react-phone-calling.png` });
      assert.deepEqual(phone.pageErrors, []);
      assert.deepEqual(phone.strays, []);
    } finally {
      await phone.close();
    }
  });

  test("a rejected token shows the service's own sentence, and no client is made", async () => {
    const token = new URLSearchParams(fragment).get("access_token");
    const forged = `${token.slice(0, token.lastIndexOf(".") + 1)}${"A".repeat(43)}`;
    const refusal = await (await fetch(`${service.url}/credentials`, { headers: { Authorization: `Bearer ${forged}` } })).json();
    const phone = await openPhone(browser, page.origin, `api=${service.url}&access_token=${forged}`);
    try {
      assert.equal(await statusWhen(phone.tab, "error"), refusal.error);
      assert.equal(phone.signaling.socketsOpened, 0);
    } finally {
      await phone.close();
    }
  });
});

describe("per_user mode", () => {
  /** A service whose login tokens live 3 s: the package renews every few seconds. */
  async function withPhone(check, { strict = false } = {}) {
    const service = await startPerUserService({
      tokenLifetimes: Array(20).fill(3),
      env: { ...LOOPBACK_ICE, CORS_ALLOWED_ORIGINS: page.origin, TELNYX_CREDENTIAL_PROPAGATION_SECS: "0" },
    });
    const fragment = `api=${service.url}&access_token=${service.accessToken()}${strict ? "&strict" : ""}`;
    const phone = await openPhone(browser, page.origin, fragment, {
      telnyx: service.telnyx,
    });
    try {
      await check({ service, phone });
      assert.deepEqual(phone.pageErrors, []);
      assert.deepEqual(phone.strays, []);
    } finally {
      await phone.close();
      await service.stop();
    }
  }

  test("across renewals an active call stays up, and exactly one TelnyxRTC exists", async () => {
    await withPhone(async ({ service, phone }) => {
      assert.equal(await statusWhen(phone.tab, "ready"), "Ready");
      assert.equal(phone.signaling.logins[0].login_token, service.telnyx.tokens[0]);
      await placeCall(phone);
      const logins = phone.signaling.logins.length;
      // Two renewals while the call is on, each with the newest token, on the same socket.
      await phone.signaling.nthLogin(logins + 2, 30_000);
      const renewed = phone.signaling.logins.slice(logins).map((login) => login.login_token);
      assert.equal(new Set(renewed).size, 2);
      assert.ok(renewed.every((token) => service.telnyx.tokens.includes(token)));
      assert.equal(phone.signaling.socketsOpened, 1, "one client, never reconnected");
      assert.equal(phone.signaling.openSockets, 1);
      assert.ok(!phone.signaling.methods.includes("telnyx_rtc.bye"), "no hang-up");
      assert.equal(await phone.tab.locator("#status").getAttribute("data-state"), "calling");
      assert.equal(service.telnyx.credentials.length, 1);
    });
  });

  test("under a root <StrictMode> the provider connects a second client; the renewal keeps its own", async () => {
    // Why the provider must stay outside StrictMode (docs/browser.md): StrictMode calls the
    // useMemo in which @telnyx/react-client 1.0.2 builds and connects its client twice. The
    // renewal, mounted, unmounted and mounted again by StrictMode, keeps the client the provider
    // kept logged in: its disconnect on unmount waits a tick, and the second mount cancels it.
    await withPhone(
      async ({ service, phone }) => {
        assert.equal(await statusWhen(phone.tab, "ready"), "Ready");
        await eventually("both clients' sockets", () => phone.signaling.socketsOpened === 2);
        const logins = phone.signaling.logins.length;
        const renewed = await phone.signaling.nthLogin(logins + 1, 30_000);
        assert.ok(service.telnyx.tokens.indexOf(renewed.login_token) > 0, "a renewal, with a newer token");
        assert.equal(phone.signaling.openSockets, 2, "the renewal did not disconnect the provider's client");
      },
      { strict: true },
    );
  });

  test("a sign-out unmounts the provider cleanly: its client disconnects and nothing renews", async () => {
    await withPhone(async ({ service, phone }) => {
      assert.equal(await statusWhen(phone.tab, "ready"), "Ready");
      await phone.tab.click("#phone-toggle");
      await phone.tab.click("#sign-out");
      assert.equal(await statusWhen(phone.tab, "signed-out"), "Signed out");
      await eventually("the signaling socket to close", () => phone.signaling.openSockets === 0);
      await eventually("the revoke", () => service.requestsSeen().includes("DELETE /credentials 204"));
      assert.equal(service.telnyx.credentials.length, 0);
      // Tokens live 3 s: a renewal still running would ask again within 5 s.
      const asked = service.requestsSeen().length;
      await new Promise((resolve) => setTimeout(resolve, 6_000));
      assert.equal(service.requestsSeen().length, asked);
      assert.equal(phone.signaling.socketsOpened, 1);
    });
  });
});
