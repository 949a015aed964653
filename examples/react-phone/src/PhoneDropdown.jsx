// The phone dropdown: the state of the provider's client on the button, and the dial pad,
// the call and Sign out in the panel it opens.

import { useContext, useEffect, useState } from "react";
import { TelnyxRTCContext } from "@telnyx/react-client";

/**
 * `{ status, call, error }` of the provider's client: "connecting", "ready", "calling" or
 * "error". Its listeners come off in the cleanup, so StrictMode's second mount leaves one set.
 */
export function useTelnyxWebRTC() {
  const client = useContext(TelnyxRTCContext);
  const [phone, setPhone] = useState({ status: "connecting", call: undefined, error: undefined });
  useEffect(() => {
    if (!client) return undefined;
    const onReady = () => setPhone((before) => (before.call ? before : { status: "ready", call: undefined, error: undefined }));
    const onError = (event) =>
      setPhone((before) => ({ ...before, status: before.call ? before.status : "error", error: event.error?.message ?? "The phone failed." }));
    const onNotification = ({ type, call }) => {
      if (type !== "callUpdate" || !call) return;
      const ended = call.state === "hangup" || call.state === "destroy";
      setPhone({ status: ended ? "ready" : "calling", call: ended ? undefined : call, error: undefined });
    };
    client.on("telnyx.ready", onReady);
    client.on("telnyx.error", onError);
    client.on("telnyx.notification", onNotification);
    return () => {
      client.off("telnyx.ready", onReady);
      client.off("telnyx.error", onError);
      client.off("telnyx.notification", onNotification);
    };
  }, [client]);
  return { ...phone, client };
}

const LABELS = { connecting: "Connecting…", ready: "Ready", calling: "On a call", error: "Phone error" };

export function PhoneDropdown({ source }) {
  const { status, call, error, client } = useTelnyxWebRTC();
  const [open, setOpen] = useState(false);
  const [number, setNumber] = useState("");
  const text = status === "calling" ? `Call ${call?.state ?? "new"}` : status === "error" ? error : LABELS[status];

  const placeCall = (event) => {
    event.preventDefault();
    client.newCall({ destinationNumber: number.trim(), audio: true, video: false });
  };
  // per_user mode: this device's credential is signed out at the service too.
  const signOut = () => source.signOut({ revoke: Boolean(source.peek()?.login_token) });

  return (
    <div className="dropdown">
      <button id="phone-toggle" type="button" aria-expanded={open} onClick={() => setOpen(!open)}>
        <output id="status" data-state={status} role="status">
          {text}
        </output>
      </button>
      {open && (
        <form className="panel" onSubmit={placeCall}>
          <label htmlFor="number">Number to call</label>
          <div className="dial">
            <input id="number" type="tel" value={number} onChange={(event) => setNumber(event.target.value)} placeholder="+15551234567" />
            <button id="call" disabled={status !== "ready" || !number.trim()}>
              Call
            </button>
          </div>
          <div className="actions">
            <button id="hang-up" type="button" disabled={!call} onClick={() => call?.hangup()}>
              Hang up
            </button>
            <button id="sign-out" type="button" onClick={signOut}>
              Sign out
            </button>
          </div>
        </form>
      )}
    </div>
  );
}
