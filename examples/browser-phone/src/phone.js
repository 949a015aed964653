// The phone dropdown: the package fetches the user's credential from telnyx-webrtc-credentials,
// logs the Telnyx WebRTC client in with it and keeps it logged in; the page lets the user place
// a call once Telnyx says the client is ready, list their devices, and sign this one out.

import { SwEvent, TelnyxRTC } from "@telnyx/webrtc";
import { connectTelnyx } from "telnyx-webrtc-credentials-client";

import { credentialSource } from "./access-token.js";

/** Set at build time by build.mjs from CREDENTIALS_API, SUPABASE_URL and SUPABASE_ANON_KEY. */
const config = __PHONE_CONFIG__;

const ui = {
  status: document.querySelector("#status"),
  number: document.querySelector("#number"),
  call: document.querySelector("#call"),
  showDevices: document.querySelector("#show-devices"),
  signOut: document.querySelector("#sign-out"),
  devices: document.querySelector("#devices"),
};

/** The one place the page's state changes: Start Call is enabled exactly when ready. */
function show(state, text) {
  ui.status.dataset.state = state;
  ui.status.textContent = text;
  ui.call.disabled = state !== "ready";
  ui.signOut.disabled = state === "signed-out" || state === "loading";
}

async function start() {
  show("loading", "Loading…");
  const source = credentialSource(config);
  if (!source) {
    show(
      "error",
      "No access token: open the link that `telnyx-webrtc-credentials demo` prints, " +
        "or build this page with SUPABASE_URL and SUPABASE_ANON_KEY.",
    );
    return;
  }
  const phone = await connectTelnyx(TelnyxRTC, source, {
    // A renewal the service refused, with its sentence; the current login still works meanwhile.
    onError: (error) => show("error", error.message),
  });
  const { client } = phone;
  // The SDK says ready again after each renewal's login: a call in progress stays on screen.
  client.on(SwEvent.Ready, () => activeCall || show("ready", "Ready"));
  client.on(SwEvent.Error, (event) => {
    show("error", `The phone could not connect to Telnyx: ${event.error?.message ?? "unknown error"}.`);
  });
  client.on(SwEvent.Notification, (notification) => followCall(notification));
  source.subscribe((event) => {
    if (event.type === "signed_out") show("signed-out", "Signed out");
  });
  ui.call.addEventListener("click", () => placeCall(client));
  ui.showDevices.addEventListener("click", () => listDevices(source));
  // per_user mode: this device's credential is signed out at the service too; static mode has
  // one shared identity, and only the phone is disconnected.
  ui.signOut.addEventListener("click", () =>
    source.signOut({ revoke: Boolean(source.peek()?.login_token) }).catch((error) => show("error", error.message)),
  );
}

/** The user's phones (`GET /devices`, per_user mode), this one marked. */
async function listDevices(source) {
  ui.devices.replaceChildren();
  try {
    for (const device of await source.devices()) {
      const item = document.createElement("li");
      item.dataset.deviceId = device.device_id ?? "";
      const name = device.device_id === source.deviceId ? "this browser" : (device.device_id ?? "no device id");
      item.textContent = `${name}: ${device.sip_username}`;
      ui.devices.append(item);
    }
  } catch (error) {
    const item = document.createElement("li");
    item.dataset.error = error.code;
    item.textContent = error.message;
    ui.devices.append(item);
  }
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
  activeCall = client.newCall({ destinationNumber, audio: true, video: false, remoteElement: "remote-audio" });
}

/** The call in progress, if any. */
let activeCall;

function followCall({ type, call }) {
  if (type !== "callUpdate" || !call) return;
  if (call.state === "hangup" || call.state === "destroy") {
    activeCall = undefined;
    show("ready", "Ready");
  } else {
    activeCall = call;
    show("calling", `Call ${call.state}`);
  }
}

start().catch((error) => show("error", error.message));
