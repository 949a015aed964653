// telnyx-webrtc-credentials-client: the user's Telnyx WebRTC credential from
// telnyx-webrtc-credentials, renewed and kept on the phone's open connection. No dependencies;
// the React bindings are the separate "./react" entry point.

export { DEVICE_ID_KEY } from "./device-id.js";
export { CredentialError } from "./errors.js";
export { createCredentialSource } from "./source.js";
export { fromSupabase } from "./supabase.js";
export { connectTelnyx, keepLoggedIn, loginOf, telnyxOptions } from "./telnyx.js";
