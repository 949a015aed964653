// Where the signed-in user's Supabase access token comes from: the link `demo` prints (token in
// the URL fragment), or supabase-js when the page is built with a Supabase URL and anon key.
// Either way the package's credential source asks the service with it.

import { createClient } from "@supabase/supabase-js";
import { createCredentialSource, fromSupabase } from "telnyx-webrtc-credentials-client";

/**
 * The credential source for this page, or null when it has neither a demo link nor a Supabase
 * project to get a token from.
 *
 * The fragment wins: it is how `demo` hands over a token, and a fragment never reaches any
 * server. The service address may come with it only then: a link that chose where a token from
 * the user's own Supabase session is sent could steal that token.
 */
export function credentialSource(config, location = window.location) {
  const fragment = new URLSearchParams(location.hash.slice(1));
  const linkToken = fragment.get("access_token");
  if (linkToken) {
    // Keep the token out of the address bar, the history and any screenshot of the page.
    history.replaceState(null, "", location.pathname + location.search);
    return createCredentialSource({
      api: fragment.get("api") || config.credentialsApi,
      getAccessToken: async () => linkToken,
    });
  }
  if (config.supabaseUrl && config.supabaseAnonKey) {
    const supabase = createClient(config.supabaseUrl, config.supabaseAnonKey);
    // getSession() refreshes an expired session first; a sign-out disconnects the phone and
    // signs this device out at the service.
    return createCredentialSource({
      api: config.credentialsApi,
      ...fromSupabase(supabase, { revokeOnSignOut: true }),
    });
  }
  return null;
}
