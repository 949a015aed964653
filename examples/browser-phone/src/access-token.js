// Where the signed-in user's Supabase access token comes from: the link `demo` prints (token in
// the URL fragment), or supabase-js when the page is built with a Supabase URL and anon key.

import { createClient } from "@supabase/supabase-js";

import { PhoneError } from "./phone-error.js";

/**
 * A source of access tokens and the credentials service they are sent to, or null when the page
 * has neither a demo link nor a Supabase project to get a token from.
 *
 * The fragment wins: it is how `demo` hands over a token, and a fragment never reaches any
 * server. The service address may come with it only then: a link that chose where a token from
 * the user's own Supabase session is sent could steal that token.
 */
export function accessTokenSource(config, location = window.location) {
  const fragment = new URLSearchParams(location.hash.slice(1));
  const linkToken = fragment.get("access_token");
  if (linkToken) {
    // Keep the token out of the address bar, the history and any screenshot of the page.
    history.replaceState(null, "", location.pathname + location.search);
    return {
      credentialsApi: fragment.get("api") || config.credentialsApi,
      accessToken: async () => linkToken,
    };
  }
  if (config.supabaseUrl && config.supabaseAnonKey) {
    const supabase = createClient(config.supabaseUrl, config.supabaseAnonKey);
    return {
      credentialsApi: config.credentialsApi,
      // getSession() refreshes an expired session first, so each call yields a usable token.
      accessToken: async () => {
        const { data, error } = await supabase.auth.getSession();
        if (error) throw new PhoneError(`Your Supabase session could not be read: ${error.message}`);
        if (!data.session) throw new PhoneError("Sign in first: there is no Supabase session in this browser.");
        return data.session.access_token;
      },
    };
  }
  return null;
}
