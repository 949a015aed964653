// React bindings for @telnyx/react-client: a credential for TelnyxRTCProvider that never changes
// once given, and the renewal that logs the provider's own client in again.
//
// Why the credential must not change (@telnyx/react-client 1.0.2, team-telnyx/webrtc
// packages/react-client/src/useTelnyxRTC.ts): the provider builds a new TelnyxRTC and connects
// it inside a useMemo over `login_token`, `login` and `password`, and never disconnects the one
// before (its TODO: "reconnect without re-instantiating client"). A renewed token handed to the
// provider would drop a live call and leave a second client connected. So renewals go through
// the provider's client (its TelnyxRTCContext) with `client.login({ creds })` instead.

import { useContext, useEffect, useRef, useState } from "react";
import { TelnyxRTCContext } from "@telnyx/react-client";

import { keepLoggedIn, loginOf } from "./telnyx.js";

const LOADING = { status: "loading", credential: undefined, options: undefined, error: undefined };

/**
 * `{ credential, options, status, error }` for `<TelnyxRTCProvider credential={credential}
 * options={options}>`: `credential` is `{ login_token }` or `{ login, password }` and `options`
 * holds `iceServers` only when the service sent them. Both keep their identity after the first
 * successful fetch, so renewals never change what the provider sees. `status` is "loading",
 * "ready", "error" (no credential could be had; `error` is a CredentialError whose message is
 * for the user) or "signed_out". A later failure keeps the credential and sets `error`.
 */
export function useTelnyxCredential(source) {
  const [state, setState] = useState(LOADING);
  useEffect(() => {
    let active = true;
    const got = (credential) =>
      setState((before) =>
        before.credential
          ? { ...before, error: undefined }
          : {
              status: "ready",
              credential: loginOf(credential),
              options: credential.ice_servers ? { iceServers: credential.ice_servers } : {},
              error: undefined,
            },
      );
    const failed = (error) =>
      setState((before) => ({ ...before, status: before.credential ? "ready" : "error", error }));
    const unsubscribe = source.subscribe((event) => {
      if (!active) return;
      if (event.type === "credential") got(event.credential);
      else if (event.type === "error") failed(event.error);
      else if (event.type === "signed_out") setState({ ...LOADING, status: "signed_out" });
    });
    source.get().then(
      (credential) => active && got(credential),
      (error) => active && failed(error),
    );
    return () => {
      active = false;
      unsubscribe();
    };
  }, [source]);
  return state;
}

/** Clients whose disconnect waits a tick, in case StrictMode mounts the same client again. */
const pendingDisconnects = new WeakMap();

/**
 * Keeps the provider's client logged in with fresh credentials from `source` (keepLoggedIn:
 * on TOKEN_EXPIRING_SOON and on a timer, through `client.login({ creds })`, never a reconnect),
 * and disconnects that client when the component unmounts, which the provider itself does not.
 * Use it inside `<TelnyxRTCProvider>`.
 */
export function useTelnyxCredentialRenewal(source, options = {}) {
  const client = useContext(TelnyxRTCContext);
  // The latest options, read when needed: an inline onError must not restart the renewal on
  // every render.
  const latest = useRef(options);
  useEffect(() => {
    latest.current = options;
  });
  useEffect(() => {
    if (!client) return undefined;
    clearTimeout(pendingDisconnects.get(client));
    pendingDisconnects.delete(client);
    const onError = (error) =>
      latest.current.onError ? latest.current.onError(error) : console.error("the phone's login was not renewed", error);
    const renewal = keepLoggedIn(client, source, { ...latest.current, onError });
    return () => {
      renewal.stop();
      // StrictMode unmounts and mounts again at once in development: the disconnect waits a
      // tick, and a mount of the same client cancels it.
      pendingDisconnects.set(
        client,
        setTimeout(() => {
          pendingDisconnects.delete(client);
          client.disconnect();
        }, 0),
      );
    };
    // The renewal settings are read once per client; only onError follows the latest render.
  }, [client, source]);
}

/** `<TelnyxCredentialRenewal source={source} />`: useTelnyxCredentialRenewal as a component. */
export function TelnyxCredentialRenewal({ source, ...options }) {
  useTelnyxCredentialRenewal(source, options);
  return null;
}
