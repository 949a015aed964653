// createCredentialSource against a fake fetch and a fake clock: one shared fetch, the retries
// the service asks for, the 401 refresh, refusals surfaced with their code, revoke and devices.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { CredentialError, createCredentialSource } from "../src/index.js";
import { FakeClock, fakeFetch, ok, refused, settle, tokenCredential } from "./fakes.mjs";

const API = "https://credentials.example.com";

/** A source over `handler`, with access tokens "access-1", "access-2", … per forced refresh. */
function setup(handler, options = {}) {
  const clock = new FakeClock();
  const { fetch, requests } = fakeFetch(clock, (request, n) => handler(request, n, clock));
  const tokenAsks = [];
  let generation = 1;
  const source = createCredentialSource({
    api: API,
    getAccessToken: async ({ forceRefresh }) => {
      tokenAsks.push(forceRefresh);
      if (forceRefresh) generation += 1;
      return `access-${generation}`;
    },
    deviceId: "device-a",
    fetch,
    clock,
    ...options,
  });
  return { clock, source, requests, tokenAsks };
}

describe("get()", () => {
  test("parallel callers share one request, and a fresh credential is not fetched again", async () => {
    const { clock, source, requests } = setup((_, n, clock) => ok(tokenCredential(clock, { token: `token-${n}` })));
    const [a, b, c] = await Promise.all([source.get(), source.get(), source.get()]);
    assert.equal(requests.length, 1);
    assert.equal(a, b);
    assert.equal(b, c);
    assert.equal(a.login_token, "token-1");
    assert.deepEqual(requests[0], {
      method: "GET",
      path: "/credentials",
      query: { device_id: "device-a" },
      authorization: "Bearer access-1",
      at: clock.now(),
    });

    await clock.advance(3_600_000);
    assert.equal((await source.get()).login_token, "token-1", "still fresh an hour later");
    assert.equal(requests.length, 1);
  });

  test("a credential close to its expiry is fetched again; refresh() always fetches", async () => {
    const { clock, source, requests } = setup((_, n, clock) =>
      ok(tokenCredential(clock, { token: `token-${n}`, lifetimeMs: 200_000 })),
    );
    assert.equal((await source.get()).login_token, "token-1");
    await clock.advance(60_000); // 140 s left: under the 150 s the SDK's warning needs
    assert.equal((await source.get()).login_token, "token-2");
    assert.equal((await source.refresh()).login_token, "token-3");
    assert.equal(source.peek().login_token, "token-3");
    assert.equal(requests.length, 3);
  });

  test("subscribers hear every credential and every failure", async () => {
    const { source } = setup((_, n, clock) => (n === 1 ? ok(tokenCredential(clock)) : refused(403, "role_not_allowed")));
    const events = [];
    const unsubscribe = source.subscribe((event) => events.push(event.type));
    await source.get();
    await assert.rejects(source.refresh());
    unsubscribe();
    await assert.rejects(source.refresh());
    assert.deepEqual(events, ["credential", "error"]);
  });
});

describe("retries", () => {
  test("a 429 is asked again after the seconds Retry-After gives", async () => {
    const { clock, source, requests } = setup((_, n, clock) =>
      n === 1 ? refused(429, "rate_limited", "Too many requests.", { "Retry-After": "2" }) : ok(tokenCredential(clock)),
    );
    const start = clock.now();
    const got = source.get();
    await clock.advance(1_999);
    assert.equal(requests.length, 1, "not asked again before Retry-After");
    await clock.advance(1);
    assert.ok((await got).login_token);
    assert.deepEqual(
      requests.map((request) => request.at - start),
      [0, 2_000],
    );
  });

  test("a 503 with an HTTP-date Retry-After waits until then; without one, a second", async () => {
    const { clock, source, requests } = setup((_, n, clock) => {
      if (n === 1) return refused(503, "telnyx_unavailable", "Telnyx is unavailable.", { "Retry-After": new Date(clock.now() + 5_000).toUTCString() });
      if (n === 2) return refused(503, "overloaded");
      return ok(tokenCredential(clock));
    });
    const start = clock.now();
    const got = source.get();
    await clock.advance(10_000);
    await got;
    assert.deepEqual(
      requests.map((request) => request.at - start),
      [0, 5_000, 6_000],
    );
  });

  test("retries are capped: a Retry-After past the cap, or one retry too many, is thrown", async () => {
    const long = setup(() => refused(429, "rate_limited", "Wait a minute.", { "Retry-After": "120" }));
    const error = await long.source.get().catch((caught) => caught);
    assert.ok(error instanceof CredentialError);
    assert.equal(error.retryAfter, 120);
    assert.equal(long.requests.length, 1, "a 120 s wait is the caller's to decide");

    const always = setup(() => refused(503, "overloaded", "Busy.", { "Retry-After": "1" }));
    const got = always.source.get().catch((caught) => caught);
    await always.clock.advance(60_000);
    const last = await got;
    assert.equal(last.code, "overloaded");
    assert.equal(always.requests.length, 4, "the first request and three retries");
  });

  test("a 401 is asked once more with a freshly refreshed access token", async () => {
    const { source, requests, tokenAsks } = setup((request, _, clock) =>
      request.authorization === "Bearer access-1" ? refused(401, "token_expired") : ok(tokenCredential(clock)),
    );
    await source.get();
    assert.deepEqual(tokenAsks, [false, true]);
    assert.deepEqual(
      requests.map((request) => request.authorization),
      ["Bearer access-1", "Bearer access-2"],
    );
  });

  test("a second 401 is surfaced, with the service's sentence and code", async () => {
    const { source, requests } = setup(() => refused(401, "session_revoked", "Sign in again."));
    const error = await source.get().catch((caught) => caught);
    assert.equal(error.status, 401);
    assert.equal(error.code, "session_revoked");
    assert.equal(error.message, "Sign in again.");
    assert.equal(requests.length, 2);
  });

  test("a 401 whose session cannot be refreshed surfaces the service's sentence", async () => {
    const { source, requests } = setup(() => refused(401, "invalid_token", "Sign in again."), {
      getAccessToken: async ({ forceRefresh }) => {
        if (forceRefresh) throw new Error("Invalid Refresh Token");
        return "access-1";
      },
    });
    const error = await source.get().catch((caught) => caught);
    assert.equal(error.code, "invalid_token");
    assert.equal(error.message, "Sign in again.");
    assert.equal(requests.length, 1);
  });

  test("a 403 is surfaced at once and never retried", async () => {
    const { source, requests, tokenAsks } = setup(() =>
      refused(403, "email_domain_not_allowed", "Your email's domain may not use the phone.", { "x-request-id": "req-1" }),
    );
    const error = await source.get().catch((caught) => caught);
    assert.ok(error instanceof CredentialError);
    assert.equal(error.name, "CredentialError");
    assert.equal(error.status, 403);
    assert.equal(error.code, "email_domain_not_allowed");
    assert.equal(error.message, "Your email's domain may not use the phone.");
    assert.equal(error.requestId, "req-1");
    assert.equal(requests.length, 1);
    assert.deepEqual(tokenAsks, [false]);
  });

  test("no answer at all names the service and CORS", async () => {
    const { source } = setup(() => {
      throw new TypeError("Failed to fetch");
    });
    const error = await source.get().catch((caught) => caught);
    assert.equal(error.code, "network_error");
    assert.equal(error.status, 0);
    assert.match(error.message, /^Cannot reach the credentials service at https:\/\/credentials\.example\.com: .*CORS_ALLOWED_ORIGINS/);
  });

  test("an answer that is not the service's shape is a bad_response", async () => {
    const { source } = setup(() => ({ status: 200, body: "<html>a proxy's page</html>" }));
    const error = await source.get().catch((caught) => caught);
    assert.equal(error.code, "bad_response");
  });
});

describe("revoke() and devices()", () => {
  test("revoke() signs out this device, revoke(true) every device", async () => {
    const { source, requests } = setup((request, _, clock) =>
      request.method === "DELETE" ? { status: 204 } : ok(tokenCredential(clock)),
    );
    await source.get();
    await source.revoke();
    assert.equal(source.peek(), undefined, "the revoked credential is forgotten");
    await source.revoke(true);
    assert.deepEqual(
      requests.slice(1).map((request) => [request.method, request.path, request.query]),
      [
        ["DELETE", "/credentials", { device_id: "device-a" }],
        ["DELETE", "/credentials", {}],
      ],
    );
  });

  test("revoke() in static mode throws the service's 405", async () => {
    const { source } = setup(() => refused(405, "method_not_allowed", "Use GET or POST."));
    const error = await source.revoke().catch((caught) => caught);
    assert.equal(error.status, 405);
    assert.equal(error.code, "method_not_allowed");
  });

  test("devices() lists the user's devices from GET /devices", async () => {
    const devices = [
      { device_id: "device-a", sip_username: "gencred1", created_at: 1, expires_at: 2, last_issued_at: 3 },
      { device_id: null, sip_username: "gencred2", created_at: 4, expires_at: null, last_issued_at: null },
    ];
    const { source, requests } = setup(() => ({ status: 200, body: { devices } }));
    assert.deepEqual(await source.devices(), devices);
    assert.deepEqual(requests.map((request) => [request.method, request.path, request.query]), [["GET", "/devices", {}]]);
  });

  test("devices() in static mode throws the service's 405", async () => {
    const { source } = setup(() => refused(405, "method_not_allowed", "Static mode has no devices."));
    const error = await source.devices().catch((caught) => caught);
    assert.equal(error.status, 405);
    assert.equal(error.message, "Static mode has no devices.");
  });
});

describe("options", () => {
  test("deviceId: false sends no device_id", async () => {
    const { source, requests } = setup((_, __, clock) => ok(tokenCredential(clock)), { deviceId: false });
    await source.get();
    assert.equal(source.deviceId, undefined);
    assert.deepEqual(requests[0].query, {});
  });

  test("a malformed api, getAccessToken or deviceId is refused at once", () => {
    assert.throws(() => createCredentialSource({ api: "credentials.example.com", getAccessToken: async () => "" }), /api must be/);
    assert.throws(() => createCredentialSource({ api: API }), /getAccessToken must be/);
    assert.throws(() => createCredentialSource({ api: API, getAccessToken: async () => "", deviceId: "a b" }), /deviceId must be/);
  });

  test("signOut() forgets the credential and tells subscribers", async () => {
    const { source } = setup((_, __, clock) => ok(tokenCredential(clock)));
    const events = [];
    source.subscribe((event) => events.push(event.type));
    await source.get();
    await source.signOut();
    await settle();
    assert.equal(source.peek(), undefined);
    assert.deepEqual(events, ["credential", "signed_out"]);
  });
});
