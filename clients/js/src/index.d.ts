// The types of the core entry point, over the ones generated from the service's OpenAPI
// document (openapi.d.ts): the credential the service answers is exactly its WebRTCCredential.

import type { components } from "./openapi.js";

/** What `GET /credentials` answers as `credential`. */
export type Credential = components["schemas"]["WebRTCCredential"];
/** An `RTCIceServer`, as `ice_servers` lists them. */
export type IceServer = components["schemas"]["IceServer"];
/** The service's stable error codes (docs/api.md#errors). */
export type ErrorCode = components["schemas"]["ErrorBody"]["code"];
/** One of the user's devices (`GET /devices`). */
export type Device = components["schemas"]["Device"];

/** The localStorage key the device id is kept under: "telnyx-webrtc-credentials.device-id". */
export declare const DEVICE_ID_KEY: string;

/** A refusal of the service (its sentence, code and status), or a failure to reach it. */
export declare class CredentialError extends Error {
  name: "CredentialError";
  /** The service's code, or one of this package's: network_error (status 0), bad_response, no_session, session_unavailable, login_failed, http_<status>. */
  code: ErrorCode | "network_error" | "bad_response" | "no_session" | "session_unavailable" | "login_failed" | (string & {});
  /** The HTTP status; 0 when no answer came. */
  status: number;
  /** The seconds the service's Retry-After asked to wait (429, 503). */
  retryAfter?: number;
  /** The answer's x-request-id, to quote in a support request. */
  requestId?: string;
}

/** A fake clock for tests; the real one by default. */
export interface Clock {
  now(): number;
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(timer: unknown): void;
}

export type SourceEvent =
  | { type: "credential"; credential: Credential }
  | { type: "error"; error: CredentialError | Error }
  | { type: "signed_out" };

export interface SignOut {
  (how?: { revoke?: boolean; accessToken?: string }): Promise<void>;
}

export interface CredentialSourceOptions {
  /** Where the service runs, e.g. "https://credentials.example.com". */
  api: string;
  /** The user's Supabase access token; asked with forceRefresh once after a 401. */
  getAccessToken(context: { forceRefresh: boolean }): Promise<string>;
  /**
   * This browser's device id by default (made once, kept in localStorage under DEVICE_ID_KEY);
   * a string of your own (1 to 64 of [A-Za-z0-9_-]); or false for one credential per user.
   */
  deviceId?: string | false | null;
  /** Calls signOut when the user signs out; fromSupabase provides it. Returns an unsubscribe. */
  watchSignOut?(signOut: SignOut): (() => void) | void;
  /** A credential is reused while it has more than this left (default 150 000 ms). */
  minValidityMs?: number;
  /** 429 and 503: retries (default 3), the longest wait for one (default 30 000 ms), the wait without Retry-After (1 000 ms). */
  maxRetries?: number;
  maxRetryDelayMs?: number;
  defaultRetryDelayMs?: number;
  fetch?: typeof fetch;
  storage?: Pick<Storage, "getItem" | "setItem">;
  clock?: Clock;
}

export interface CredentialSource {
  /** This browser's device id, or undefined when off. */
  readonly deviceId: string | undefined;
  /** The current credential: fetched once and shared while fresh, parallel callers included. */
  get(): Promise<Credential>;
  /** A credential fetched now (or by the fetch already under way). */
  refresh(): Promise<Credential>;
  /** The last credential fetched, without a request. */
  peek(): Credential | undefined;
  /** Signs this device out (DELETE /credentials?device_id=…), or with all every device of the user; per_user mode only. */
  revoke(all?: boolean, options?: { accessToken?: string }): Promise<void>;
  /** The user's devices (GET /devices); per_user mode only. */
  devices(): Promise<Device[]>;
  /** Hears every credential, failure and sign-out; returns the unsubscribe. */
  subscribe(subscriber: (event: SourceEvent) => void): () => void;
  /** Forgets the credential, tells subscribers (connectTelnyx disconnects), and with revoke signs this device out. */
  signOut: SignOut;
}

export declare function createCredentialSource(options: CredentialSourceOptions): CredentialSource;

/** The parts of supabase-js's client that fromSupabase uses. */
export interface SupabaseLike {
  auth: {
    getSession(): Promise<{ data: { session: { access_token: string } | null }; error: { message: string } | null }>;
    refreshSession(): Promise<{ data: { session: { access_token: string } | null }; error: { message: string } | null }>;
    onAuthStateChange(
      callback: (event: string, session: { access_token: string } | null) => void,
    ): { data: { subscription: { unsubscribe(): void } } };
  };
}

/** getAccessToken and watchSignOut from a supabase-js client. */
export declare function fromSupabase(
  supabase: SupabaseLike,
  options?: { revokeOnSignOut?: boolean },
): Pick<CredentialSourceOptions, "getAccessToken" | "watchSignOut">;

/** How the SDK logs in: { login_token } in per_user mode, { login, password } in static mode. */
export type TelnyxLogin = { login_token: string } | { login: string; password: string };

/** The login, plus iceServers only when the service sent ice_servers. */
export declare function loginOf(credential: Credential): TelnyxLogin;
export declare function telnyxOptions(credential: Credential): TelnyxLogin & { iceServers?: IceServer[] };

/** The parts of @telnyx/webrtc's TelnyxRTC that renewal uses. */
export interface TelnyxClientLike {
  options: Record<string, unknown>;
  readonly connected: boolean;
  on(event: string, handler: (event: any) => void): unknown;
  off(event: string, handler: (event: any) => void): unknown;
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  login(params: { creds?: Record<string, unknown>; onSuccess?: () => void; onError?: (error: unknown) => void }): Promise<void>;
}

export interface RenewalOptions {
  /** Renew this long before expires_at, in case TOKEN_EXPIRING_SOON never comes (default 60 000 ms). */
  renewBeforeMs?: number;
  /** Ask again this much later when the service hands back the same token (default 5 000 ms). */
  sameTokenRetryMs?: number;
  /** A new credential's refused login is tried again after each of these (default 1, 2, 4, 8 s). */
  loginRetryDelaysMs?: number[];
  /** A renewal login with no answer in this long counts as refused (default 15 000 ms). */
  loginTimeoutMs?: number;
  /** Renewal failures; console.error by default. */
  onError?(error: CredentialError | Error): void;
  clock?: Clock;
}

/** Keeps client logged in with fresh credentials through client.login({ creds }), never a reconnect. */
export declare function keepLoggedIn(
  client: TelnyxClientLike,
  source: CredentialSource,
  options?: RenewalOptions & { credential?: Credential },
): { renew(): Promise<void>; stop(): void };

export interface PhoneHandle<Client> {
  client: Client;
  /** Stops renewing and disconnects the client. */
  disconnect(): Promise<void>;
}

/** Fetches the credential, builds and connects new TelnyxRTC(...), and keeps it logged in. */
export declare function connectTelnyx<Client extends TelnyxClientLike>(
  TelnyxRTC: new (options: any) => Client,
  source: CredentialSource,
  options?: RenewalOptions & { clientOptions?: Record<string, unknown> },
): Promise<PhoneHandle<Client>>;
