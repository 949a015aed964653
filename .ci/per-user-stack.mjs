// The service in per_user mode against local Supabase and Telnyx stand-ins, for .ci/run's
// contract test: prints `<service url> <access token>` on one line once it serves, and runs
// until SIGTERM. Needs examples/browser-phone's npm packages (npm ci) and the debug binary.

import { startPerUserService } from "../examples/browser-phone/test/harness.mjs";

// Rate limits off and no propagation wait: schemathesis sends hundreds of requests as one user,
// most with a device_id it has not sent before (each a new credential).
const service = await startPerUserService({
  env: { RATE_LIMIT_PER_USER: "off", TELNYX_CREDENTIAL_PROPAGATION_SECS: "0" },
});
console.log(`${service.url} ${service.accessToken()}`);

// A second SIGTERM while stopping must not end this process before the service has stopped.
let stopping;
process.on("SIGTERM", () => {
  stopping ??= service.stop().then(() => process.exit(0));
});
