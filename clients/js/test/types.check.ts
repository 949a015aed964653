// Compiled by `npm run check` (tsc), never run: the declarations describe the real answers.

import { connectTelnyx, createCredentialSource, fromSupabase, type Credential, type Device } from "../src/index.js";

declare const supabase: Parameters<typeof fromSupabase>[0];
declare const TelnyxRTC: new (options: object) => {
  options: Record<string, unknown>;
  connected: boolean;
  on(event: string, handler: (event: any) => void): unknown;
  off(event: string, handler: (event: any) => void): unknown;
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  login(params: object): Promise<void>;
  newCall(params: { destinationNumber: string }): unknown;
};

const source = createCredentialSource({ api: "https://credentials.example.com", ...fromSupabase(supabase) });
const credential: Credential = await source.get();
const token: string | null | undefined = credential.login_token;
const expires: number = credential.expires_at;
const devices: Device[] = await source.devices();
const first: string | null | undefined = devices[0]?.device_id;
const phone = await connectTelnyx(TelnyxRTC, source);
phone.client.newCall({ destinationNumber: "+15551234567" });
void [token, expires, first];
