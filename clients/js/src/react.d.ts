// The types of the React entry point.

import type { CredentialError, CredentialSource, IceServer, RenewalOptions, TelnyxLogin } from "./index.js";

export interface TelnyxCredentialState {
  status: "loading" | "ready" | "error" | "signed_out";
  /** For <TelnyxRTCProvider credential>: the same object for as long as the component is mounted. */
  credential: TelnyxLogin | undefined;
  /** For <TelnyxRTCProvider options>: iceServers only when the service sent them; as stable. */
  options: { iceServers?: IceServer[] } | undefined;
  /** The last failure: its message is for the user. */
  error: CredentialError | Error | undefined;
}

export declare function useTelnyxCredential(source: CredentialSource): TelnyxCredentialState;

/** Inside <TelnyxRTCProvider>: renews through the provider's client, and disconnects it on unmount. */
export declare function useTelnyxCredentialRenewal(source: CredentialSource, options?: Omit<RenewalOptions, "clock">): void;

export declare function TelnyxCredentialRenewal(props: { source: CredentialSource } & Omit<RenewalOptions, "clock">): null;
