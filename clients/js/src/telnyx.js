// The Telnyx side: the TelnyxRTC options a credential makes, and a client kept logged in with
// fresh credentials on its open connection, so that renewing never drops a call.
//
// What this relies on in @telnyx/webrtc (team-telnyx/webrtc, packages/js, 2.27):
// - `BaseSession.login({ creds, onSuccess, onError })` copies `creds` (login, password,
//   login_token) into `client.options` and sends a new `login` on the open socket, without
//   reconnecting; it resolves in both cases and reports through `onSuccess`/`onError`, and does
//   nothing at all while `connection.isAlive` is false.
// - `_checkTokenExpiry` reads the login token's `exp` after each login and emits `telnyx.warning`
//   with `TOKEN_EXPIRING_SOON` (code 34001) `TOKEN_EXPIRY_WARNING_SECONDS` (120) before it
//   (since 2.26.1).
// - A refused login emits `telnyx.error` with error code 46001 (`LOGIN_FAILED`,
//   `_handleLoginError`); a logged-in client emits `telnyx.ready`.
// - `client.connected` is true while the signaling socket is open.

import { CredentialError } from "./errors.js";
import { sleep, systemClock } from "./source.js";

const TOKEN_EXPIRING_SOON = 34001;
/** LOGIN_FAILED, INVALID_CREDENTIALS, AUTHENTICATION_REQUIRED in the SDK's errorCodes. */
const LOGIN_ERRORS = new Set([46001, 46002, 46003]);

const DEFAULTS = {
  // The timer's renewal, in case TOKEN_EXPIRING_SOON never comes: this long before expires_at.
  renewBeforeMs: 60_000,
  // When the service hands back the token being renewed (asked before its refresh margin).
  sameTokenRetryMs: 5_000,
  // A new credential may be refused for a few seconds while Telnyx propagates it (Telnyx's
  // JWT guide): its logins are tried again after these delays.
  loginRetryDelaysMs: [1_000, 2_000, 4_000, 8_000],
  // A renewal login that gets neither an answer nor an error in this long counts as refused.
  loginTimeoutMs: 15_000,
};

/** How the SDK logs in with `credential`: a login token (per_user) or username and password (static). */
export function loginOf(credential) {
  return credential.login_token
    ? { login_token: credential.login_token }
    : { login: credential.username, password: credential.password };
}

/**
 * The options for `new TelnyxRTC(...)`: the login, and `iceServers` only when the service sent
 * `ice_servers`. Given any `iceServers`, the SDK drops its own STUN and TURN servers (TURN over
 * TLS on 443 among them, `BrowserSession`'s iceServers setter), so without them it must get none.
 */
export function telnyxOptions(credential) {
  return { ...loginOf(credential), ...(credential.ice_servers && { iceServers: credential.ice_servers }) };
}

const sameLogin = (a, b) =>
  a.login_token ? a.login_token === b.login_token : a.login === b.login && a.password === b.password;

/**
 * Keeps `client` logged in with fresh credentials from `source`: on `TOKEN_EXPIRING_SOON`, and
 * on a timer `renewBeforeMs` before `expires_at` in case the warning never comes. Renewal only
 * ever calls `client.login({ creds })` on the open connection: it never reconnects the socket,
 * so calls in progress stay up. While the socket is down, the fresh login goes into
 * `client.options`, which the SDK's own reconnect logs in with.
 *
 * A credential that has not logged in yet (a brand-new user's, or the first renewal after a
 * revoke) may be refused while Telnyx propagates it: its login is tried again after each of
 * `loginRetryDelaysMs`.
 *
 * @returns {{ renew(): Promise<void>, stop(): void }}
 */
export function keepLoggedIn(client, source, options = {}) {
  const settings = { ...DEFAULTS, ...options };
  const clock = options.clock ?? systemClock;
  const report = options.onError ?? ((error) => console.error("the phone's login was not renewed", error));
  // The credential the client is logged in with (or logging in with): the one given, else the
  // source's latest if the client uses it, else one that is due at once.
  const latest = source.peek();
  let current =
    options.credential ??
    (latest && sameLogin(loginOf(latest), client.options ?? {}) ? latest : { ...client.options, expires_at: 0 });
  let accepted = false; // `current` has logged in once
  let propagationAttempt = 0;
  let loggingIn = false;
  let renewing;
  let timer;
  let stopped = false;

  const schedule = (ms) => {
    clock.clearTimeout(timer);
    // setTimeout takes at most 2^31 - 1 ms (24.8 days).
    timer = clock.setTimeout(() => renew(), Math.min(Math.max(ms, 0), 2 ** 31 - 1));
  };
  // renewBeforeMs before expires_at, or halfway through a life shorter than twice that; at
  // least a second later, so a service that hands out short credentials is not asked in a loop.
  const scheduleExpiry = () => {
    const left = current.expires_at - clock.now();
    schedule(Math.max(left - settings.renewBeforeMs, left / 2, 1_000));
  };

  const onReady = () => {
    accepted = true;
    propagationAttempt = 0;
  };
  const onWarning = (event) => {
    if (event?.warning?.code === TOKEN_EXPIRING_SOON || event?.warning?.name === "TOKEN_EXPIRING_SOON") renew();
  };
  // The SDK's own login (on connect, and on its reconnects) failed: before the credential ever
  // worked, that is propagation, and the login is tried again.
  const onLoginError = (event) => {
    if (stopped || loggingIn || accepted || !LOGIN_ERRORS.has(event?.error?.code)) return;
    const delay = settings.loginRetryDelaysMs[propagationAttempt];
    if (delay === undefined) return report(loginRefused(current));
    propagationAttempt += 1;
    clock.setTimeout(() => {
      if (stopped || accepted) return;
      // @telnyx/react-client's provider disconnects its client on any telnyx.error.
      if (client.connected) client.login({ creds: loginOf(current) });
      else client.connect();
    }, delay);
  };
  client.on("telnyx.ready", onReady);
  client.on("telnyx.warning", onWarning);
  client.on("telnyx.error", onLoginError);
  scheduleExpiry();

  /** One `client.login` with `creds`: true once it worked, false if refused or unanswered. */
  function loginOnce(creds) {
    return new Promise((resolve) => {
      const timeout = clock.setTimeout(() => resolve(false), settings.loginTimeoutMs);
      const settle = (worked) => {
        clock.clearTimeout(timeout);
        resolve(worked);
      };
      client.login({ creds, onSuccess: () => settle(true), onError: () => settle(false) });
    });
  }

  async function loginWith(fresh) {
    if (!client.connected) {
      Object.assign(client.options, loginOf(fresh));
      current = fresh;
      accepted = false;
      return scheduleExpiry();
    }
    for (let attempt = 0; ; attempt += 1) {
      loggingIn = true;
      const worked = await loginOnce(loginOf(fresh)).finally(() => {
        loggingIn = false;
      });
      if (stopped) return;
      if (worked) {
        current = fresh;
        accepted = true;
        return scheduleExpiry();
      }
      const delay = settings.loginRetryDelaysMs[attempt];
      if (delay === undefined) {
        report(loginRefused(fresh));
        // The old login may still work: ask again before it expires.
        return scheduleExpiry();
      }
      await sleep(clock, delay);
      if (stopped) return;
      if (!client.connected) {
        // @telnyx/react-client's provider disconnected its client on the refusal's telnyx.error:
        // connect again with the fresh login; onLoginError goes on with the delays left.
        Object.assign(client.options, loginOf(fresh));
        current = fresh;
        accepted = false;
        propagationAttempt = attempt + 1;
        client.connect();
        return scheduleExpiry();
      }
    }
  }

  async function renewOnce() {
    clock.clearTimeout(timer);
    let fresh;
    try {
      fresh = await source.refresh();
    } catch (error) {
      if (stopped) return;
      report(error);
      // Asked again later when the service said so or could not be reached; a refusal such as
      // 403 stands until something changes.
      const later = error.retryAfter !== undefined || error.status === 0 || error.status >= 500;
      if (later) schedule(Math.max((error.retryAfter ?? 0) * 1000, settings.sameTokenRetryMs));
      return;
    }
    if (stopped) return;
    if (sameLogin(loginOf(fresh), loginOf(current))) {
      if (fresh.login_token) return schedule(settings.sameTokenRetryMs); // not renewed yet
      current = fresh; // static mode: the same identity, valid for longer
      return scheduleExpiry();
    }
    await loginWith(fresh);
  }

  /** Renews now (or joins the renewal under way). */
  function renew() {
    if (stopped) return Promise.resolve();
    renewing ??= renewOnce().finally(() => {
      renewing = undefined;
    });
    return renewing;
  }

  return {
    renew,
    stop() {
      stopped = true;
      clock.clearTimeout(timer);
      client.off("telnyx.ready", onReady);
      client.off("telnyx.warning", onWarning);
      client.off("telnyx.error", onLoginError);
    },
  };
}

function loginRefused(credential) {
  return new CredentialError(`Telnyx refused the login of ${credential.username ?? "this credential"}.`, {
    code: "login_failed",
    status: 0,
  });
}

/**
 * Fetches the credential from `source`, builds `new TelnyxRTC(...)` with it (plus
 * `clientOptions`), connects, and keeps it logged in (keepLoggedIn). When the source reports
 * a sign-out, it disconnects.
 *
 * @returns {Promise<{ client: object, disconnect(): Promise<void> }>}
 */
export async function connectTelnyx(TelnyxRTC, source, options = {}) {
  const credential = await source.get();
  const client = new TelnyxRTC({ ...options.clientOptions, ...telnyxOptions(credential) });
  const renewal = keepLoggedIn(client, source, { ...options, credential });
  let disconnected;
  const disconnect = () => {
    disconnected ??= (async () => {
      renewal.stop();
      unsubscribe();
      await client.disconnect();
    })();
    return disconnected;
  };
  const unsubscribe = source.subscribe((event) => {
    if (event.type === "signed_out") disconnect();
  });
  await client.connect();
  return { client, disconnect };
}
