// The credential source: one place that asks the service for the user's WebRTC credential,
// shares it while it is fresh, retries what the service says to retry, and tells subscribers.

import { resolveDeviceId } from "./device-id.js";
import { CredentialError } from "./errors.js";

/** The real clock; tests hand in a fake one with the same three members. */
export const systemClock = {
  now: () => Date.now(),
  setTimeout: (callback, ms) => globalThis.setTimeout(callback, ms),
  clearTimeout: (timer) => globalThis.clearTimeout(timer),
};

/** Resolves after `ms` on `clock`. */
export const sleep = (clock, ms) => new Promise((resolve) => clock.setTimeout(resolve, ms));

const DEFAULTS = {
  // A credential is handed out again while it has more than this left. The SDK warns 120 s
  // before a login token's exp, so a phone that starts later than that starts with a fresh one.
  minValidityMs: 150_000,
  // 429 and 503 are asked again after Retry-After, at most this many times, never waiting longer
  // than maxRetryDelayMs for one answer (a longer Retry-After is thrown to the caller at once).
  maxRetries: 3,
  maxRetryDelayMs: 30_000,
  // When a 429 or 503 comes without Retry-After.
  defaultRetryDelayMs: 1_000,
};

/**
 * Creates the source of one signed-in user's credential.
 *
 * @param {object} options
 * @param {string} options.api where the service runs, e.g. "https://credentials.example.com"
 * @param {(context: { forceRefresh: boolean }) => Promise<string>} options.getAccessToken
 *   the user's Supabase access token; asked with `forceRefresh: true` once after a 401
 * @param {string | false | null} [options.deviceId] see resolveDeviceId
 * @param {(signOut: (how?: { revoke?: boolean, accessToken?: string }) => Promise<void>) => (() => void) | void} [options.watchSignOut]
 *   calls `signOut` when the user signs out (fromSupabase provides it)
 */
export function createCredentialSource(options) {
  const { api, getAccessToken, watchSignOut } = options;
  if (typeof api !== "string" || !/^https?:\/\//.test(api)) {
    throw new TypeError(`api must be the service's address, such as "https://credentials.example.com"; got ${JSON.stringify(api)}.`);
  }
  if (typeof getAccessToken !== "function") {
    throw new TypeError("getAccessToken must be a function that resolves to the user's Supabase access token.");
  }
  const settings = { ...DEFAULTS, ...options };
  const clock = options.clock ?? systemClock;
  const fetchImpl = options.fetch ?? ((...args) => globalThis.fetch(...args));
  const base = api.replace(/\/+$/, "");
  const deviceId = resolveDeviceId(options.deviceId, options.storage);
  const subscribers = new Set();

  let current; // the last credential fetched, until sign-out
  let inflight; // the fetch under way, shared by every caller

  const emit = (event) => {
    for (const subscriber of [...subscribers]) {
      try {
        subscriber(event);
      } catch (error) {
        // One subscriber's bug must not stop the others, nor the fetch that told them.
        console.error("a credential subscriber threw", error);
      }
    }
  };

  /**
   * One call to the service, with its retries: 429 and 503 after Retry-After (capped), 401 once
   * with a token fresh from getAccessToken, the way supabase-js refreshes a session; every other
   * refusal (403 among them) at once.
   */
  async function call(method, path, { withDevice = true, accessToken } = {}) {
    const url = `${base}${path}${withDevice && deviceId ? `?device_id=${encodeURIComponent(deviceId)}` : ""}`;
    let token = accessToken ?? (await getAccessToken({ forceRefresh: false }));
    let refreshed = accessToken !== undefined;
    for (let retries = 0; ; ) {
      let response;
      try {
        response = await fetchImpl(url, { method, headers: { Authorization: `Bearer ${token}` } });
      } catch (cause) {
        // The browser hides why (no server, or CORS refused this origin); name both.
        const origin = globalThis.location?.origin ?? "this page's origin";
        throw new CredentialError(
          `Cannot reach the credentials service at ${base}: check that it is running and that its ` +
            `CORS_ALLOWED_ORIGINS lists ${origin}.`,
          { code: "network_error", status: 0, cause },
        );
      }
      if (response.ok) return response;
      const error = await refusal(response, clock);
      if (response.status === 401 && !refreshed) {
        refreshed = true;
        // A session that cannot be refreshed leaves the service's sentence as the one to show.
        token = await getAccessToken({ forceRefresh: true }).catch(() => {
          throw error;
        });
        continue;
      }
      const waitMs = retryDelayMs(error, settings);
      if (waitMs === undefined || retries >= settings.maxRetries) throw error;
      retries += 1;
      await sleep(clock, waitMs);
    }
  }

  async function fetchCredential() {
    const response = await call("GET", "/credentials");
    const body = await json(response);
    if (!body?.success || typeof body.credential !== "object") {
      throw new CredentialError(`The credentials service at ${base} answered without a credential.`, {
        code: "bad_response",
        status: response.status,
      });
    }
    current = body.credential;
    emit({ type: "credential", credential: current });
    return current;
  }

  /** Starts a fetch, or joins the one under way. */
  function shared() {
    inflight ??= fetchCredential()
      .catch((error) => {
        emit({ type: "error", error });
        throw error;
      })
      .finally(() => {
        inflight = undefined;
      });
    return inflight;
  }

  const fresh = (credential) => credential && credential.expires_at - clock.now() > settings.minValidityMs;

  const source = {
    /** This browser's device id, or undefined when off. */
    deviceId,

    /** The current credential: fetched once and shared while fresh, parallel callers included. */
    async get() {
      if (fresh(current) && !inflight) return current;
      return shared();
    },

    /** A credential fetched now (or by the fetch already under way). */
    refresh: () => shared(),

    /** The last credential fetched, without asking the service; undefined before the first. */
    peek: () => current,

    /**
     * Signs this device out at the service (`DELETE /credentials?device_id=…`), or with `all`
     * every device of the user (`DELETE /credentials`). per_user mode only: in static mode the
     * service answers 405 and this throws.
     */
    async revoke(all = false, { accessToken } = {}) {
      await call("DELETE", "/credentials", { withDevice: !all, accessToken });
      current = undefined;
    },

    /** The user's devices (`GET /devices`, per_user mode). */
    async devices() {
      const body = await json(await call("GET", "/devices", { withDevice: false }));
      if (!Array.isArray(body?.devices)) {
        throw new CredentialError(`The credentials service at ${base} answered without a device list.`, {
          code: "bad_response",
          status: 200,
        });
      }
      return body.devices;
    },

    /**
     * Calls `subscriber` with `{ type: "credential", credential }` after every fetch,
     * `{ type: "error", error }` after every failed one, and `{ type: "signed_out" }`.
     * Returns the function that unsubscribes.
     */
    subscribe(subscriber) {
      subscribers.add(subscriber);
      return () => subscribers.delete(subscriber);
    },

    /**
     * The user signed out: forget the credential and tell subscribers (connectTelnyx disconnects
     * the phone), then, with `revoke`, sign this device out at the service with `accessToken`
     * (the session is gone by now, so fromSupabase hands in the last token it saw).
     */
    async signOut({ revoke = false, accessToken } = {}) {
      current = undefined;
      emit({ type: "signed_out" });
      if (revoke) await source.revoke(false, { accessToken });
    },
  };
  watchSignOut?.(source.signOut);
  return source;
}

async function json(response) {
  if (response.status === 204) return undefined;
  return response.json().catch(() => undefined);
}

/** The CredentialError for a refusal, with the service's sentence and code when it sent them. */
async function refusal(response, clock) {
  const body = await json(response);
  return new CredentialError(
    typeof body?.error === "string" ? body.error : `The credentials service answered ${response.status}.`,
    {
      code: typeof body?.code === "string" ? body.code : `http_${response.status}`,
      status: response.status,
      retryAfter: retryAfterSecs(response.headers.get("Retry-After"), clock),
      requestId: response.headers.get("x-request-id") ?? undefined,
    },
  );
}

/** Retry-After as seconds: delay-seconds or an HTTP-date (RFC 9110 section 10.2.3). */
function retryAfterSecs(header, clock) {
  if (header === null || header === "") return undefined;
  if (/^\d+$/.test(header.trim())) return Number(header);
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, Math.ceil((date - clock.now()) / 1000));
}

/** How long to wait before asking again, or undefined when this refusal is not retried. */
function retryDelayMs(error, settings) {
  if (error.status !== 429 && error.status !== 503) return undefined;
  const ms = error.retryAfter === undefined ? settings.defaultRetryDelayMs : error.retryAfter * 1000;
  return ms <= settings.maxRetryDelayMs ? ms : undefined;
}
