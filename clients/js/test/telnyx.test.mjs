// connectTelnyx and keepLoggedIn against a fake TelnyxRTC, a fake fetch and a fake clock:
// the options built, renewal on TOKEN_EXPIRING_SOON and on the timer, renewal that never ends
// a call, the retry of a brand-new credential's login, and disconnect.

import assert from "node:assert/strict";
import { beforeEach, describe, test } from "node:test";

import { connectTelnyx, createCredentialSource, telnyxOptions } from "../src/index.js";
import { FakeClock, FakeTelnyxRTC, fakeFetch, ok, refused, settle, tokenCredential } from "./fakes.mjs";

const DAY_MS = 86_400_000;

beforeEach(() => {
  FakeTelnyxRTC.instances = [];
});

/** A source whose n-th answer is `answers(n, clock)`, and a phone connected through it. */
async function phone(answers, options = {}) {
  const clock = new FakeClock();
  const { fetch, requests } = fakeFetch(clock, (_, n) => answers(n, clock));
  const source = createCredentialSource({
    api: "https://credentials.example.com",
    getAccessToken: async () => "access",
    deviceId: false,
    fetch,
    clock,
  });
  const errors = [];
  const connected = connectTelnyx(FakeTelnyxRTC, source, {
    clock,
    onError: (error) => errors.push(error),
    clientOptions: { debug: false },
    ...options,
  });
  await settle();
  const handle = await connected;
  await settle();
  return { clock, source, requests, errors, handle, client: handle.client };
}

/** The service in per_user mode: token-1, token-2, … each living `lifetimeMs`. */
const tokens = (lifetimeMs = DAY_MS) => (n, clock) => ok(tokenCredential(clock, { token: `token-${n}`, lifetimeMs }));

describe("the TelnyxRTC options", () => {
  test("per_user: the login token; static: username and password; iceServers only when sent", () => {
    const iceServers = [{ urls: ["turns:turn.example.com:443"], username: "u", credential: "c" }];
    assert.deepEqual(telnyxOptions({ username: "gencred1", login_token: "jwt", expires_at: 1 }), { login_token: "jwt" });
    assert.deepEqual(telnyxOptions({ username: "gencred1", password: "secret", expires_at: 1 }), {
      login: "gencred1",
      password: "secret",
    });
    assert.deepEqual(telnyxOptions({ username: "u", login_token: "jwt", ice_servers: iceServers }), {
      login_token: "jwt",
      iceServers,
    });
  });

  test("connectTelnyx builds one client with them and the app's own options, and connects it", async () => {
    const { client } = await phone(tokens());
    assert.equal(FakeTelnyxRTC.instances.length, 1);
    assert.deepEqual(client.logins, [{ login_token: "token-1", debug: false }]);
    assert.equal(client.connects, 1);
  });
});

describe("renewal", () => {
  test("on TOKEN_EXPIRING_SOON it logs in again with a fresh token on the same connection", async () => {
    const { client, requests } = await phone(tokens());
    client.warnExpiringSoon();
    await settle();
    assert.equal(requests.length, 2);
    assert.deepEqual(
      client.logins.map((login) => login.login_token),
      ["token-1", "token-2"],
    );
    assert.equal(client.connects, 1, "no reconnect");
    assert.equal(client.disconnects, 0);
    assert.equal(FakeTelnyxRTC.instances.length, 1);
  });

  test("without the warning, its timer renews a minute before expires_at", async () => {
    const { client, clock } = await phone(tokens(DAY_MS));
    await clock.advance(DAY_MS - 60_001);
    assert.equal(client.logins.length, 1, "not yet");
    await clock.advance(1);
    assert.deepEqual(
      client.logins.map((login) => login.login_token),
      ["token-1", "token-2"],
    );
    // And the next renewal is set for the new token's expiry.
    await clock.advance(DAY_MS - 60_000);
    assert.equal(client.logins.at(-1).login_token, "token-3");
  });

  test("a warning during a renewal joins it: one request, one login", async () => {
    const { client, requests } = await phone(tokens());
    client.warnExpiringSoon();
    client.warnExpiringSoon();
    await settle();
    assert.equal(requests.length, 2);
    assert.equal(client.logins.length, 2);
  });

  test("a credential shorter-lived than two minutes is renewed halfway through its life", async () => {
    const { client, clock, requests } = await phone(tokens(30_000));
    await clock.advance(14_999);
    assert.equal(requests.length, 1);
    await clock.advance(1);
    assert.equal(requests.length, 2);
    assert.equal(client.logins.at(-1).login_token, "token-2");
  });

  test("a renewal never ends a call: no disconnect, no reconnect, the call stays active", async () => {
    const { client } = await phone(tokens());
    const call = client.newCall({ destinationNumber: "+15551234567" });
    let hungUp = false;
    call.hangup = () => {
      hungUp = true;
    };
    client.warnExpiringSoon();
    await settle();
    assert.equal(client.logins.at(-1).login_token, "token-2");
    assert.equal(hungUp, false);
    assert.equal(call.state, "active");
    assert.equal(client.connects, 1);
    assert.equal(client.disconnects, 0);
  });

  test("while the socket is down, the fresh login waits in client.options for the SDK's reconnect", async () => {
    const { client } = await phone(tokens());
    client.connected = false;
    client.warnExpiringSoon();
    await settle();
    assert.equal(client.options.login_token, "token-2");
    assert.equal(client.logins.length, 1, "no login sent on a closed socket");
    assert.equal(client.connects, 1, "and no reconnect of ours");
  });

  test("the same token handed back is asked for again five seconds later, not logged in with", async () => {
    const { client, clock, requests } = await phone((n, clock) =>
      ok(tokenCredential(clock, { token: n <= 2 ? "token-1" : "token-2", lifetimeMs: 100_000 })),
    );
    client.warnExpiringSoon();
    await settle();
    assert.equal(client.logins.length, 1);
    await clock.advance(5_000);
    assert.equal(requests.length, 3);
    assert.equal(client.logins.at(-1).login_token, "token-2");
  });

  test("a 429 while renewing waits as Retry-After says, then renews", async () => {
    const { client, clock, requests } = await phone((n, clock) =>
      n === 2
        ? refused(429, "rate_limited", "Too many requests.", { "Retry-After": "3" })
        : ok(tokenCredential(clock, { token: `token-${n}` })),
    );
    client.warnExpiringSoon();
    await clock.advance(2_999);
    assert.equal(requests.length, 2);
    await clock.advance(1);
    assert.equal(client.logins.at(-1).login_token, "token-3");
  });

  test("a 403 while renewing is reported and not asked again", async () => {
    const { client, clock, errors, requests } = await phone((n, clock) =>
      n === 1 ? ok(tokenCredential(clock)) : refused(403, "role_not_allowed", "Not for this role."),
    );
    client.warnExpiringSoon();
    await clock.advance(60_000);
    assert.equal(requests.length, 2);
    assert.deepEqual(
      errors.map((error) => error.code),
      ["role_not_allowed"],
    );
  });
});

describe("a brand-new credential's login", () => {
  test("refused while Telnyx propagates it, it is tried again with backoff until it works", async () => {
    const clock = new FakeClock();
    const { fetch } = fakeFetch(clock, () => ok(tokenCredential(clock)));
    const source = createCredentialSource({ api: "http://127.0.0.1:1", getAccessToken: async () => "a", fetch, clock, deviceId: false });
    // The stand-in refuses logins for the first 2.5 s.
    const born = clock.now();
    class Propagating extends FakeTelnyxRTC {
      accepts = () => clock.now() - born >= 2_500;
    }
    const { client } = await connectTelnyx(Propagating, source, { clock });
    const ready = [];
    client.on("telnyx.ready", () => ready.push(clock.now() - born));
    await settle();
    assert.equal(client.logins.length, 1);
    await clock.advance(1_000); // first retry, at 1 s: still refused
    assert.equal(client.logins.length, 2);
    await clock.advance(2_000); // second, 2 s later: works
    assert.equal(client.logins.length, 3);
    assert.deepEqual(ready, [3_000]);
    await clock.advance(60_000);
    assert.equal(client.logins.length, 3, "nothing more once it worked");
    assert.equal(client.connects, 1);
  });

  test("after the provider disconnected the refused client, the retry connects it again", async () => {
    const clock = new FakeClock();
    const { fetch } = fakeFetch(clock, () => ok(tokenCredential(clock)));
    const source = createCredentialSource({ api: "http://127.0.0.1:1", getAccessToken: async () => "a", fetch, clock, deviceId: false });
    let refusals = 1;
    class Provided extends FakeTelnyxRTC {
      accepts = () => refusals-- <= 0;
      constructor(options) {
        super(options);
        // What @telnyx/react-client's provider does on any telnyx.error.
        this.on("telnyx.error", () => this.disconnect());
      }
    }
    const { client } = await connectTelnyx(Provided, source, { clock });
    await settle();
    assert.equal(client.connected, false);
    await clock.advance(1_000);
    assert.equal(client.connects, 2);
    assert.equal(client.logins.length, 2);
    assert.equal(client.connected, true);
  });

  test("gives up after the last delay and reports it", async () => {
    const errors = [];
    const clock = new FakeClock();
    const { fetch } = fakeFetch(clock, () => ok(tokenCredential(clock)));
    const source = createCredentialSource({ api: "http://127.0.0.1:1", getAccessToken: async () => "a", fetch, clock, deviceId: false });
    class Never extends FakeTelnyxRTC {
      accepts = () => false;
    }
    const { client } = await connectTelnyx(Never, source, { clock, onError: (error) => errors.push(error) });
    await clock.advance(60_000);
    assert.equal(client.logins.length, 5, "the first login and four retries (1, 2, 4 and 8 s)");
    assert.deepEqual(
      errors.map((error) => error.code),
      ["login_failed"],
    );
  });

  test("a renewal to a new credential (after a revoke) is retried the same way", async () => {
    const { client, clock } = await phone((n, clock) =>
      ok(tokenCredential(clock, { token: `token-${n}`, username: n === 1 ? "gencred1" : "gencred2" })),
    );
    const born = clock.now();
    client.accepts = (options) => options.login_token === "token-1" || clock.now() - born >= 2_000;
    client.warnExpiringSoon();
    await settle();
    assert.equal(client.logins.length, 2, "refused at first");
    await clock.advance(1_000);
    assert.equal(client.logins.length, 3, "refused again");
    await clock.advance(2_000);
    assert.equal(client.logins.length, 4);
    assert.equal(client.options.login_token, "token-2");
    await clock.advance(8_000);
    assert.equal(client.logins.length, 4, "worked: no more");
  });
});

test("a refused renewal login whose client the provider disconnected connects again with the fresh login", async () => {
  const clock = new FakeClock();
  const { fetch } = fakeFetch(clock, (_, n) =>
    ok(tokenCredential(clock, { token: `token-${n}`, username: n === 1 ? "gencred1" : "gencred2" })),
  );
  const source = createCredentialSource({ api: "http://127.0.0.1:1", getAccessToken: async () => "a", fetch, clock, deviceId: false });
  const born = clock.now();
  class Provided extends FakeTelnyxRTC {
    accepts = (options) => options.login_token === "token-1" || clock.now() - born >= 1_000;
    constructor(options) {
      super(options);
      this.on("telnyx.error", () => this.disconnect()); // as @telnyx/react-client's provider does
    }
  }
  const { client } = await connectTelnyx(Provided, source, { clock });
  await settle();
  client.warnExpiringSoon();
  await settle();
  assert.equal(client.connected, false, "the provider disconnected it");
  await clock.advance(1_000);
  assert.equal(client.connects, 2);
  assert.equal(client.logins.at(-1).login_token, "token-2");
  assert.equal(client.connected, true);
  await clock.advance(30_000);
  assert.equal(client.connects, 2, "logged in: nothing more");
});

describe("disconnect", () => {
  test("disconnect() stops renewing", async () => {
    const { client, handle, clock, requests } = await phone(tokens(DAY_MS));
    await handle.disconnect();
    assert.equal(client.disconnects, 1);
    client.warnExpiringSoon();
    await clock.advance(2 * DAY_MS);
    assert.equal(requests.length, 1);
  });

  test("a sign-out reported by the source disconnects the phone", async () => {
    const { client, source, clock, requests } = await phone(tokens(DAY_MS));
    await source.signOut();
    await settle();
    assert.equal(client.disconnects, 1);
    assert.equal(client.connected, false);
    await clock.advance(2 * DAY_MS);
    assert.equal(requests.length, 1, "no renewal after sign-out");
  });
});
