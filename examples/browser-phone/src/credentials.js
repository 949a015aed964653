// Asks telnyx-webrtc-credentials for the user's WebRTC credential and turns it into
// `TelnyxRTC` options.

import { PhoneError } from "./phone-error.js";

/** `GET /credentials` with the user's access token; the service's own sentence on refusal. */
export async function fetchCredential(tokens) {
  const accessToken = await tokens.accessToken();
  let response;
  try {
    response = await fetch(`${tokens.credentialsApi}/credentials`, {
      headers: { Authorization: `Bearer ${accessToken}` },
    });
  } catch {
    // The browser hides why (no server, or CORS refused this origin); name both.
    throw new PhoneError(
      `Cannot reach the credentials service at ${tokens.credentialsApi}: check that it is running ` +
        `and that its CORS_ALLOWED_ORIGINS lists this page's origin, ${window.location.origin}.`,
    );
  }
  const body = await response.json().catch(() => null);
  if (!response.ok || !body?.success) {
    const error = new PhoneError(body?.error ?? `The credentials service answered ${response.status}.`);
    // 429 and 503 say how many seconds to wait before asking again (exposed to pages by CORS).
    error.retryAfter = Number(response.headers.get("Retry-After")) || 0;
    throw error;
  }
  return body.credential;
}

/**
 * How the SDK logs in with this credential: a login token in per_user mode, the SIP username
 * and password in static mode.
 */
export function loginOptions(credential) {
  if (credential.login_token) {
    return { login_token: credential.login_token };
  }
  return { login: credential.username, password: credential.password };
}

/**
 * The options for `new TelnyxRTC(...)`: the login, and the service's ICE servers only when it
 * sends them. The SDK replaces its own STUN and TURN servers (TURN over TLS on 443 among them,
 * with credentials it provisions itself) with any `iceServers` it is given; the service sends
 * `ice_servers` only when its operator configured TURN credentials, and otherwise the SDK's own
 * relays must stay.
 */
export function clientOptions(credential) {
  const options = loginOptions(credential);
  if (credential.ice_servers) options.iceServers = credential.ice_servers;
  return options;
}
