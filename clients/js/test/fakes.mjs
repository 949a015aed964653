// The stand-ins of the unit tests: a clock that moves only when told, a fetch that answers as
// the service does, a localStorage, and a TelnyxRTC that behaves as @telnyx/webrtc's client
// does where the package relies on it (see the comment at the top of src/telnyx.js).

/** A clock whose time moves only by `advance(ms)`, running due timers in order. */
export class FakeClock {
  #now;
  #timers = [];
  #nextId = 1;

  constructor(start = Date.UTC(2026, 0, 1)) {
    this.#now = start;
  }

  now = () => this.#now;

  setTimeout = (callback, ms = 0) => {
    const id = this.#nextId++;
    this.#timers.push({ id, at: this.#now + Math.max(0, ms), callback });
    return id;
  };

  clearTimeout = (id) => {
    this.#timers = this.#timers.filter((timer) => timer.id !== id);
  };

  /** Timers not yet run, as delays from now. */
  pending() {
    return this.#timers.map((timer) => timer.at - this.#now).sort((a, b) => a - b);
  }

  /** Moves time on by `ms`, running each timer due on the way and what it sets off. */
  async advance(ms) {
    const end = this.#now + ms;
    await settle();
    for (;;) {
      const due = this.#timers.filter((timer) => timer.at <= end).sort((a, b) => a.at - b.at || a.id - b.id)[0];
      if (!due) break;
      this.#timers = this.#timers.filter((timer) => timer !== due);
      this.#now = due.at;
      due.callback();
      await settle();
    }
    this.#now = end;
    await settle();
  }
}

/** Lets every pending promise chain run. */
export async function settle() {
  for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
}

/**
 * A fetch that answers from `handler(request)` (`{ status, body, headers }`, or a thrown error
 * for a network failure), and records every request with the clock's time.
 */
export function fakeFetch(clock, handler) {
  const requests = [];
  const fetch = async (url, init = {}) => {
    const parsed = new URL(url);
    const request = {
      method: init.method ?? "GET",
      path: parsed.pathname,
      query: Object.fromEntries(parsed.searchParams),
      authorization: init.headers?.Authorization,
      at: clock.now(),
    };
    requests.push(request);
    const { status = 200, body, headers = {} } = await handler(request, requests.length);
    const text = body === undefined ? "" : typeof body === "string" ? body : JSON.stringify(body);
    return new Response(status === 204 ? null : text, {
      status,
      headers: { "content-type": "application/json", ...headers },
    });
  };
  return { fetch, requests };
}

/** A credential as the service answers it in per_user mode. */
export function tokenCredential(clock, { token = "token-1", lifetimeMs = 86_400_000, username = "gencred1" } = {}) {
  return { username, login_token: token, expires_at: clock.now() + lifetimeMs, realm: "sip.telnyx.com" };
}

/** `{ success: true, credential }`, the service's answer. */
export const ok = (credential) => ({ status: 200, body: { success: true, credential } });

/** The service's error body. */
export const refused = (status, code, error = `refused: ${code}`, headers = {}) => ({
  status,
  body: { success: false, error, code },
  headers,
});

/** localStorage's getItem and setItem over a Map; `entries` survives a "reload". */
export class FakeStorage {
  entries = new Map();
  getItem(key) {
    return this.entries.has(key) ? this.entries.get(key) : null;
  }
  setItem(key, value) {
    this.entries.set(key, String(value));
  }
}

/**
 * TelnyxRTC as the package uses it: `on`/`off`, `connect()` (emits `telnyx.ready` once the
 * login works), `login({ creds, onSuccess, onError })` (copies creds into `options`, answers
 * through the callbacks, does nothing while disconnected), `disconnect()`, `connected`,
 * `newCall()` (a call in `calls` with `hangup()`), and `emit` for the test to play the server.
 * `accepts(options)` decides each login; every login's options land in `logins`.
 */
export class FakeTelnyxRTC {
  static instances = [];

  handlers = new Map();
  logins = [];
  connects = 0;
  disconnects = 0;
  connected = false;
  calls = {};
  accepts = () => true;

  constructor(options) {
    this.options = { ...options };
    FakeTelnyxRTC.instances.push(this);
  }

  on(event, handler) {
    if (!this.handlers.has(event)) this.handlers.set(event, new Set());
    this.handlers.get(event).add(handler);
    return this;
  }

  off(event, handler) {
    this.handlers.get(event)?.delete(handler);
    return this;
  }

  emit(event, payload) {
    for (const handler of [...(this.handlers.get(event) ?? [])]) handler(payload);
  }

  #answerLogin({ onSuccess, onError } = {}) {
    this.logins.push({ ...this.options });
    if (this.accepts(this.options)) {
      onSuccess?.();
      this.emit("telnyx.ready", {});
    } else {
      const error = { code: 46001, name: "LOGIN_FAILED", message: "Login failed" };
      this.emit("telnyx.error", { error });
      onError?.(error);
    }
  }

  async connect() {
    this.connects += 1;
    this.connected = true;
    queueMicrotask(() => this.#answerLogin());
  }

  async login({ creds, onSuccess, onError } = {}) {
    if (!this.connected) return;
    Object.assign(this.options, creds);
    queueMicrotask(() => this.#answerLogin({ onSuccess, onError }));
  }

  async disconnect() {
    this.disconnects += 1;
    this.connected = false;
    for (const call of Object.values(this.calls)) call.hangup();
  }

  newCall(params) {
    const call = {
      id: `call-${Object.keys(this.calls).length + 1}`,
      state: "active",
      params,
      hangup: () => {
        call.state = "hangup";
      },
    };
    this.calls[call.id] = call;
    return call;
  }

  /** What the SDK emits 120 s before a login token's exp. */
  warnExpiringSoon() {
    this.emit("telnyx.warning", { warning: { code: 34001, name: "TOKEN_EXPIRING_SOON" } });
  }
}
