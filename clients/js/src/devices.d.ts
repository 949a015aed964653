// The `GET /devices` answer, written by hand from the contract of per-device credentials
// (issue 18) until the service serves it and src/openapi.d.ts holds its `Device` and
// `DeviceList` schemas; then index.d.ts takes them from there instead (one line, marked).

/** One of the user's devices, as `GET /devices` lists them (per_user mode). */
export interface DeviceContract {
  /** The device_id this device's credential was asked with; null for the one without. */
  device_id: string | null;
  /** The SIP username of the device's own telephony credential. */
  sip_username: string;
  /** When the credential was created: milliseconds since the Unix epoch. */
  created_at: number;
  /** When it expires, or null if it does not. */
  expires_at: number | null;
  /** When a login token was last issued for it, or null. */
  last_issued_at: number | null;
}
