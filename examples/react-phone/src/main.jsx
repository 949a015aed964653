// Mounts the app with the one credential source of the page.

import { StrictMode } from "react";
import { createRoot } from "react-dom/client";

import { App } from "./App.jsx";
import { credentialSource } from "./source.js";

// `strict` in the fragment (`#api=…&access_token=…&strict`) mounts the whole app under a root
// <StrictMode>, as Vite's React template does: the test uses it to show why the provider must
// stay outside StrictMode. Read before credentialSource() takes the fragment away.
const strict = new URLSearchParams(window.location.hash.slice(1)).has("strict");

/** Set at build time by vite.config.mjs from CREDENTIALS_API, SUPABASE_URL and SUPABASE_ANON_KEY. */
const source = credentialSource(__PHONE_CONFIG__);

const app = <App source={source} />;
createRoot(document.getElementById("root")).render(strict ? <StrictMode>{app}</StrictMode> : app);
