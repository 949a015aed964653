// The phone dropdown: fetch the user's credential from telnyx-webrtc-credentials, log the Telnyx
// WebRTC client in with it, and let the user place a call once Telnyx says the client is ready.

import { SwEvent, TELNYX_WARNING_CODES, TelnyxRTC } from "@telnyx/webrtc";

import { accessTokenSource } from "./access-token.js";
import { clientOptions, fetchCredential, loginOptions } from "./credentials.js";

/** Set at build time by build.mjs from CREDENTIALS_API, SUPABASE_URL and SUPABASE_ANON_KEY. */
const config = __PHONE_CONFIG__;

const ui = {
  status: document.querySelector("#status"),
  number: document.querySelector("#number"),
  call: document.querySelector("#call"),
};

/** The one place the page's state changes: Start Call is enabled exactly when ready. */
function show(state, text) {
  ui.status.dataset.state = state;
  ui.status.textContent = text;
  ui.call.disabled = state !== "ready";
}

async function start() {
  show("loading", "Loading…");
  const tokens = accessTokenSource(config);
  if (!tokens) {
    show(
      "error",
      "No access token: open the link that `telnyx-webrtc-credentials demo` prints, " +
        "or build this page with SUPABASE_URL and SUPABASE_ANON_KEY.",
    );
    return;
  }
  const credential = await fetchCredential(tokens);
  const client = new TelnyxRTC(clientOptions(credential));
  client.on(SwEvent.Ready, () => show("ready", "Ready"));
  client.on(SwEvent.Error, (event) => {
    show("error", `The phone could not connect to Telnyx: ${event.error?.message ?? "unknown error"}.`);
  });
  client.on(SwEvent.Warning, (event) => {
    if (event.warning?.code === TELNYX_WARNING_CODES.TOKEN_EXPIRING_SOON) {
      renewLogin(client, tokens).catch((error) => show("error", error.message));
    }
  });
  client.on(SwEvent.Notification, (notification) => followCall(notification));
  ui.call.addEventListener("click", () => placeCall(client));
  await client.connect();
}

/** How long to wait before asking again when the service still hands out the expiring token. */
const RENEW_RETRY_MS = 5_000;

/**
 * The SDK warns before a login token expires; a fresh credential from the service, sent on the
 * open connection, keeps the client registered without dropping it. The service renews a
 * token some time before it expires (TOKEN_REFRESH_MARGIN_SECS); asked earlier, it answers with
 * the same token, and then the page asks again a little later rather than logging in with it.
 * A refusal that says when to come back (429 rate_limited, 503) is asked again then: the
 * expiring token still works meanwhile.
 */
async function renewLogin(client, tokens) {
  const again = (delayMs) =>
    setTimeout(() => renewLogin(client, tokens).catch((error) => show("error", error.message)), delayMs);
  const expiring = client.options.login_token;
  let credential;
  try {
    credential = await fetchCredential(tokens);
  } catch (error) {
    if (!error.retryAfter) throw error;
    again(error.retryAfter * 1000);
    return;
  }
  if (credential.login_token && credential.login_token === expiring) {
    again(RENEW_RETRY_MS);
    return;
  }
  await client.login({ creds: loginOptions(credential) });
}

function placeCall(client) {
  const destinationNumber = ui.number.value.trim();
  if (!destinationNumber) {
    ui.number.focus();
    ui.number.setCustomValidity("Enter a number to call.");
    ui.number.reportValidity();
    return;
  }
  ui.number.setCustomValidity("");
  show("calling", `Calling ${destinationNumber}…`);
  client.newCall({ destinationNumber, audio: true, video: false, remoteElement: "remote-audio" });
}

function followCall({ type, call }) {
  if (type !== "callUpdate" || !call) return;
  if (call.state === "hangup" || call.state === "destroy") {
    show("ready", "Ready");
  } else {
    show("calling", `Call ${call.state}`);
  }
}

start().catch((error) => show("error", error.message));
