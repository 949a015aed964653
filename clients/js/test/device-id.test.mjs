// The device id: made once with crypto.randomUUID(), kept in localStorage across reloads,
// overridable, and off for apps that want one credential per user.

import assert from "node:assert/strict";
import { test } from "node:test";

import { DEVICE_ID_KEY, createCredentialSource } from "../src/index.js";
import { FakeClock, FakeStorage, fakeFetch, ok, tokenCredential } from "./fakes.mjs";

/** A page load: a new source over the same storage, and the device_id its first fetch sends. */
async function load(storage, deviceId) {
  const clock = new FakeClock();
  const { fetch, requests } = fakeFetch(clock, () => ok(tokenCredential(clock)));
  const source = createCredentialSource({ api: "https://c.example.com", getAccessToken: async () => "t", fetch, clock, storage, deviceId });
  await source.get();
  return { source, sent: requests[0].query.device_id };
}

test("made once, kept under its documented key, and sent again after a reload", async () => {
  const storage = new FakeStorage();
  const first = await load(storage);
  assert.match(first.sent, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.equal(storage.getItem(DEVICE_ID_KEY), first.sent);
  assert.equal(DEVICE_ID_KEY, "telnyx-webrtc-credentials.device-id");

  const reloaded = await load(storage);
  assert.equal(reloaded.sent, first.sent);
  assert.equal(reloaded.source.deviceId, first.sent);

  const otherBrowser = await load(new FakeStorage());
  assert.notEqual(otherBrowser.sent, first.sent);
});

test("an id of the app's own is sent instead, and nothing is stored", async () => {
  const storage = new FakeStorage();
  const { sent } = await load(storage, "desk-phone_2");
  assert.equal(sent, "desk-phone_2");
  assert.equal(storage.getItem(DEVICE_ID_KEY), null);
});

test("deviceId: false (or null) turns it off: no device_id, nothing stored", async () => {
  for (const off of [false, null]) {
    const storage = new FakeStorage();
    const { sent, source } = await load(storage, off);
    assert.equal(sent, undefined);
    assert.equal(source.deviceId, undefined);
    assert.equal(storage.entries.size, 0);
  }
});

test("a stored value the service would refuse is replaced", async () => {
  const storage = new FakeStorage();
  storage.setItem(DEVICE_ID_KEY, "not valid!");
  const { sent } = await load(storage);
  assert.match(sent, /^[0-9a-f-]{36}$/);
  assert.equal(storage.getItem(DEVICE_ID_KEY), sent);
});

test("where storage throws, one id lasts for the page", async () => {
  const broken = {
    getItem() {
      throw new Error("SecurityError");
    },
    setItem() {
      throw new Error("SecurityError");
    },
  };
  const a = await load(broken);
  const b = await load(broken);
  assert.match(a.sent, /^[0-9a-f-]{36}$/);
  assert.equal(b.sent, a.sent);
});
