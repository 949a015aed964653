// The app's shell: a header with the phone dropdown. The credential comes from the package's
// hook, and the provider gets it once; the renewal component keeps the provider's client
// logged in afterwards.

import { StrictMode } from "react";
import { TelnyxRTCProvider } from "@telnyx/react-client";
import { TelnyxCredentialRenewal, useTelnyxCredential } from "telnyx-webrtc-credentials-client/react";

import { PhoneDropdown } from "./PhoneDropdown.jsx";

export function App({ source }) {
  return (
    <header>
      <h1>Acme support desk</h1>
      {source ? (
        <Phone source={source} />
      ) : (
        <p role="alert">
          No access token: open the link that `telnyx-webrtc-credentials demo` prints, or build this page with
          SUPABASE_URL and SUPABASE_ANON_KEY.
        </p>
      )}
    </header>
  );
}

function Phone({ source }) {
  const { credential, options, status, error } = useTelnyxCredential(source);
  if (status === "signed_out") return <Badge state="signed-out" text="Signed out" />;
  if (!credential) {
    return status === "error" ? <Badge state="error" text={error.message} /> : <Badge state="loading" text="Loading…" />;
  }
  // The provider stays outside <StrictMode>: @telnyx/react-client 1.0.2 builds and connects its
  // client inside a useMemo, which StrictMode calls twice in development (two registrations).
  // Everything below it may use StrictMode.
  return (
    <TelnyxRTCProvider credential={credential} options={options}>
      <TelnyxCredentialRenewal source={source} />
      <StrictMode>
        <PhoneDropdown source={source} />
      </StrictMode>
    </TelnyxRTCProvider>
  );
}

/** The phone's state where the dropdown's button would be. */
function Badge({ state, text }) {
  return (
    <output id="status" data-state={state} role={state === "error" ? "alert" : "status"}>
      {text}
    </output>
  );
}
