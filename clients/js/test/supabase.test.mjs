// fromSupabase against a stand-in for supabase-js's auth client: tokens from getSession(), a
// refreshSession() after a 401, and the phone disconnected (and optionally this device signed
// out at the service) on SIGNED_OUT.

import assert from "node:assert/strict";
import { test } from "node:test";

import { connectTelnyx, createCredentialSource, fromSupabase } from "../src/index.js";
import { FakeClock, FakeTelnyxRTC, fakeFetch, ok, refused, settle, tokenCredential } from "./fakes.mjs";

/** supabase.auth as the package uses it, with `signOut()` emitting SIGNED_OUT as supabase-js does. */
class FakeAuth {
  listeners = new Set();
  session = { access_token: "access-1" };
  refreshes = 0;
  async getSession() {
    return { data: { session: this.session }, error: null };
  }
  async refreshSession() {
    this.refreshes += 1;
    this.session = { access_token: `access-${this.refreshes + 1}` };
    this.emit("TOKEN_REFRESHED", this.session);
    return { data: { session: this.session }, error: null };
  }
  onAuthStateChange(callback) {
    this.listeners.add(callback);
    return { data: { subscription: { unsubscribe: () => this.listeners.delete(callback) } } };
  }
  emit(event, session) {
    for (const listener of this.listeners) listener(event, session);
  }
  async signOut() {
    this.session = null;
    this.emit("SIGNED_OUT", null);
  }
}

function setup(handler, options) {
  const clock = new FakeClock();
  const auth = new FakeAuth();
  const { fetch, requests } = fakeFetch(clock, (request, n) => handler(request, n, clock));
  const source = createCredentialSource({
    api: "https://credentials.example.com",
    ...fromSupabase({ auth }, options),
    deviceId: "device-a",
    fetch,
    clock,
  });
  return { auth, clock, source, requests };
}

const service = (request, _, clock) =>
  request.method === "DELETE" ? { status: 204 } : ok(tokenCredential(clock));

test("the access token comes from getSession(), and a 401 asks refreshSession()", async () => {
  const { auth, source, requests } = setup((request, _, clock) =>
    request.authorization === "Bearer access-1" ? refused(401, "token_expired") : ok(tokenCredential(clock)),
  );
  await source.get();
  assert.equal(auth.refreshes, 1);
  assert.deepEqual(
    requests.map((request) => request.authorization),
    ["Bearer access-1", "Bearer access-2"],
  );
});

test("without a session it says to sign in, and calls nothing", async () => {
  const { auth, source, requests } = setup(service);
  auth.session = null;
  const error = await source.get().catch((caught) => caught);
  assert.equal(error.code, "no_session");
  assert.match(error.message, /^Sign in first/);
  assert.equal(requests.length, 0);
});

test("SIGNED_OUT disconnects the phone and stops its renewals; nothing is revoked by default", async () => {
  const { auth, clock, source, requests } = setup(service);
  const { client } = await connectTelnyx(FakeTelnyxRTC, source, { clock });
  await settle();
  await auth.signOut();
  await settle();
  assert.equal(client.disconnects, 1);
  assert.equal(client.connected, false);
  await clock.advance(2 * 86_400_000);
  assert.deepEqual(
    requests.map((request) => request.method),
    ["GET"],
  );
});

test("with revokeOnSignOut, SIGNED_OUT also signs this device out with the last token seen", async () => {
  const { auth, source, requests } = setup(service, { revokeOnSignOut: true });
  const { client } = await connectTelnyx(FakeTelnyxRTC, source, { clock: new FakeClock() });
  await settle();
  await auth.refreshSession(); // a TOKEN_REFRESHED event: access-2 is the last one seen
  await auth.signOut();
  await settle();
  assert.equal(client.disconnects, 1);
  const revoke = requests.at(-1);
  assert.deepEqual([revoke.method, revoke.path, revoke.query, revoke.authorization], [
    "DELETE",
    "/credentials",
    { device_id: "device-a" },
    "Bearer access-2",
  ]);
});
