// This browser's device id: made once, kept in localStorage, sent as `device_id`.

/** The localStorage key the device id is kept under. */
export const DEVICE_ID_KEY = "telnyx-webrtc-credentials.device-id";

/** What the service accepts as a `device_id`: 1 to 64 of `[A-Za-z0-9_-]`. */
const DEVICE_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** Ids made on pages where localStorage cannot be used, kept for the page's life. */
let unstoredId;

/**
 * The device id to send: `deviceId` itself when it is a string (checked against what the
 * service accepts), none when it is `false` or `null` (one credential per user), and otherwise
 * this browser's own, made with `crypto.randomUUID()` the first time and read back from
 * `storage` (localStorage) on every later page load. Where storage throws (a sandboxed frame,
 * some private modes) the id lasts as long as the page.
 *
 * @param {string | false | null | undefined} deviceId
 * @param {Pick<Storage, "getItem" | "setItem"> | undefined} storage
 * @returns {string | undefined}
 */
export function resolveDeviceId(deviceId, storage = globalThis.localStorage) {
  if (deviceId === false || deviceId === null) return undefined;
  if (deviceId !== undefined) {
    if (typeof deviceId !== "string" || !DEVICE_ID.test(deviceId)) {
      throw new TypeError(`deviceId must be 1 to 64 letters, digits, "_" or "-"; got ${JSON.stringify(deviceId)}.`);
    }
    return deviceId;
  }
  try {
    const kept = storage?.getItem(DEVICE_ID_KEY);
    if (kept && DEVICE_ID.test(kept)) return kept;
    const made = crypto.randomUUID();
    if (!storage) throw new Error("no storage");
    storage.setItem(DEVICE_ID_KEY, made);
    return made;
  } catch {
    unstoredId ??= crypto.randomUUID();
    return unstoredId;
  }
}
