// Supabase as the source of access tokens, and of the sign-out that ends the phone.
//
// What this relies on in supabase-js (supabase/auth-js GoTrueClient): `getSession()` answers
// `{ data: { session }, error }` and refreshes an expired access token first;
// `refreshSession()` refreshes it now; `onAuthStateChange(callback)` calls
// `callback(event, session)` with `SIGNED_OUT` once the session is gone, and answers
// `{ data: { subscription } }` whose `unsubscribe()` stops it.

import { CredentialError } from "./errors.js";

/**
 * The `getAccessToken` and `watchSignOut` options of createCredentialSource, from a supabase-js
 * client: `createCredentialSource({ api, ...fromSupabase(supabase) })`.
 *
 * On `SIGNED_OUT` the source forgets its credential and connectTelnyx disconnects the phone;
 * with `revokeOnSignOut` this device is also signed out at the service (per_user mode), with
 * the last access token seen, since the session is gone by then.
 *
 * @param {{ auth: object }} supabase
 * @param {{ revokeOnSignOut?: boolean }} [options]
 */
export function fromSupabase(supabase, { revokeOnSignOut = false } = {}) {
  let lastToken;
  return {
    async getAccessToken({ forceRefresh = false } = {}) {
      const { data, error } = forceRefresh ? await supabase.auth.refreshSession() : await supabase.auth.getSession();
      if (error) {
        throw new CredentialError(`Your Supabase session could not be read: ${error.message}`, {
          code: "session_unavailable",
          status: 0,
          cause: error,
        });
      }
      if (!data?.session) {
        throw new CredentialError("Sign in first: there is no Supabase session in this browser.", {
          code: "no_session",
          status: 0,
        });
      }
      lastToken = data.session.access_token;
      return lastToken;
    },
    watchSignOut(signOut) {
      const { data } = supabase.auth.onAuthStateChange((event, session) => {
        if (session?.access_token) lastToken = session.access_token;
        if (event !== "SIGNED_OUT") return;
        const revoke = revokeOnSignOut && lastToken !== undefined;
        signOut({ revoke, accessToken: lastToken }).catch((error) =>
          console.error("this device could not be signed out at the credentials service", error),
        );
        lastToken = undefined;
      });
      return () => data?.subscription?.unsubscribe();
    },
  };
}
