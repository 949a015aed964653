// Local stand-ins for the two providers the service calls in per_user mode, on 127.0.0.1:
// Supabase's JWKS endpoint (empty: the test signs HS256) and the slice of the Telnyx API that
// per_user mode uses, shaped after Telnyx's API reference (telephony credentials and their
// login tokens).

import { createHmac, randomUUID } from "node:crypto";
import { once } from "node:events";
import { createServer } from "node:http";

async function listen(handle) {
  const server = createServer((request, response) => {
    handle(request, response).catch((error) => {
      response.writeHead(500, { "content-type": "application/json" });
      response.end(JSON.stringify({ errors: [{ detail: String(error) }] }));
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return { url: `http://127.0.0.1:${server.address().port}`, close: () => server.close() };
}

function json(response, status, body) {
  response.writeHead(status, { "content-type": "application/json" });
  response.end(JSON.stringify(body));
}

async function readJson(request) {
  let text = "";
  for await (const chunk of request) text += chunk;
  return text ? JSON.parse(text) : {};
}

function base64url(text) {
  return Buffer.from(text).toString("base64url");
}

/** Supabase Auth with no asymmetric keys: tokens are the legacy HS256 kind. */
export async function startFakeSupabase() {
  return listen(async (request, response) => {
    if (request.url === "/auth/v1/.well-known/jwks.json") return json(response, 200, { keys: [] });
    json(response, 404, { error: "not found" });
  });
}

/** A Supabase access token for a signed-in user, signed with the project's HS256 secret. */
export function supabaseAccessToken({ supabaseUrl, secret, userId = randomUUID() }) {
  const now = Math.floor(Date.now() / 1000);
  const header = base64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));
  const payload = base64url(
    JSON.stringify({
      iss: `${supabaseUrl}/auth/v1`,
      sub: userId,
      aud: "authenticated",
      exp: now + 3600,
      iat: now,
      role: "authenticated",
      is_anonymous: false,
    }),
  );
  const signature = createHmac("sha256", secret).update(`${header}.${payload}`).digest("base64url");
  return `${header}.${payload}.${signature}`;
}

/**
 * A login token as Telnyx mints them: a JWT whose `exp` the SDK reads with `atob`, which takes
 * standard base64 only; the payload is padded until its base64url form is also plain base64.
 */
function loginToken(credentialId, lifetimeSecs) {
  const exp = Math.floor(Date.now() / 1000) + lifetimeSecs;
  for (let filler = ""; ; filler += "x") {
    const payload = base64url(JSON.stringify({ sub: credentialId, exp, jti: randomUUID(), filler }));
    if (!/[-_]/.test(payload)) {
      return `${base64url(JSON.stringify({ alg: "RS256", typ: "JWT" }))}.${payload}.c2lnbmF0dXJl`;
    }
  }
}

/**
 * The Telnyx API: `GET`/`POST /v2/telephony_credentials`, `POST .../{id}/token` (201, the JWT as
 * text/plain) and `DELETE .../{id}`. `tokenLifetimes` gives the lifetime in seconds of each
 * login token minted, in order; past its end tokens live a day.
 */
export async function startFakeTelnyx({ tokenLifetimes = [] } = {}) {
  const credentials = [];
  const tokens = [];
  const fake = await listen(async (request, response) => {
    const url = new URL(request.url, "http://127.0.0.1");
    if (request.headers.authorization !== "Bearer KEY-test") {
      return json(response, 401, { errors: [{ code: "10009", title: "Authentication failed" }] });
    }
    const [, version, collection, id, action] = url.pathname.split("/");
    if (version !== "v2" || collection !== "telephony_credentials") {
      return json(response, 404, { errors: [{ code: "10005", title: "Resource not found" }] });
    }
    const credential = credentials.find((candidate) => candidate.id === id);
    if (request.method === "GET" && !id) {
      const name = url.searchParams.get("filter[name]");
      const resourceId = url.searchParams.get("filter[resource_id]");
      const data = credentials.filter((c) => c.name === name && c.resource_id === resourceId);
      return json(response, 200, { data, meta: { total_results: data.length, page_number: 1 } });
    }
    if (request.method === "POST" && !id) {
      const { connection_id: connectionId, name } = await readJson(request);
      const created = {
        id: randomUUID(),
        record_type: "credential",
        name,
        resource_id: `connection:${connectionId}`,
        sip_username: `gencred${randomUUID().replaceAll("-", "").slice(0, 20)}`,
        expired: false,
        created_at: new Date().toISOString(),
      };
      credentials.push(created);
      return json(response, 201, { data: created });
    }
    if (!credential) return json(response, 404, { errors: [{ code: "10005", title: "Resource not found" }] });
    if (request.method === "POST" && action === "token") {
      const token = loginToken(credential.id, tokenLifetimes[tokens.length] ?? 86_400);
      tokens.push(token);
      response.writeHead(201, { "content-type": "text/plain" });
      return response.end(token);
    }
    if (request.method === "DELETE" && !action) {
      credentials.splice(credentials.indexOf(credential), 1);
      return json(response, 200, { data: credential });
    }
    json(response, 404, { errors: [{ code: "10005", title: "Resource not found" }] });
  });
  return { ...fake, credentials, tokens };
}
