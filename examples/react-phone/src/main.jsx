// Mounts the app with the one credential source of the page.

import { createRoot } from "react-dom/client";

import { App } from "./App.jsx";
import { credentialSource } from "./source.js";

/** Set at build time by vite.config.mjs from CREDENTIALS_API, SUPABASE_URL and SUPABASE_ANON_KEY. */
const source = credentialSource(__PHONE_CONFIG__);

createRoot(document.getElementById("root")).render(<App source={source} />);
