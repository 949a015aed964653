// The credential source for this page: the token of the link `demo` prints (in the URL
// fragment), or the user's supabase-js session when the page is built with a Supabase URL and
// anon key. The same choice as examples/browser-phone/src/access-token.js.

import { createClient } from "@supabase/supabase-js";
import { createCredentialSource, fromSupabase } from "telnyx-webrtc-credentials-client";

/**
 * One source for the whole app, made once outside any component; null when the page has no way
 * to get a token. The service address may come from the fragment only with the fragment's own
 * token: a link that chose where a token from the user's session is sent could steal it.
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
    return createCredentialSource({
      api: config.credentialsApi,
      ...fromSupabase(supabase, { revokeOnSignOut: true }),
    });
  }
  return null;
}
