// Local stand-ins for the two providers the service calls in per_user mode, on 127.0.0.1:
// Supabase's JWKS endpoint (empty: the test signs HS256) and admin users endpoint, and the slice
// of the Telnyx API that per_user mode uses, shaped after Telnyx's API reference (team-telnyx/
// openapi spec3.yml: telephony credentials with expires_at, PATCH, expiry, paginated lists,
// errors as an array or as one object, and their login tokens).

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

/**
 * Supabase Auth with no asymmetric keys (tokens are the legacy HS256 kind), its token endpoint
 * refusing every refresh token, and its admin
 * `GET /auth/v1/admin/users/{id}` (supabase/auth internal/api/admin.go): `serviceRoleKey` as
 * `apikey` and bearer, 404 `user_not_found` for a user not in `users`.
 */
export async function startFakeSupabase({ serviceRoleKey = "sb_secret_test", users = new Set() } = {}) {
  const fake = await listen(async (request, response) => {
    if (request.url === "/auth/v1/.well-known/jwks.json") return json(response, 200, { keys: [] });
    // What supabase-js's refreshSession() asks from the page: Supabase answers any origin, and
    // the test's sessions carry a refresh token it does not know (supabase/auth's error shape,
    // API version 2024-01-01).
    if (request.url.startsWith("/auth/v1/token")) {
      const cors = {
        "access-control-allow-origin": "*",
        "access-control-allow-headers": "apikey, authorization, content-type, x-client-info, x-supabase-api-version",
        "access-control-allow-methods": "POST, OPTIONS",
      };
      if (request.method === "OPTIONS") return response.writeHead(204, cors).end();
      response.writeHead(400, { ...cors, "content-type": "application/json", "x-supabase-api-version": "2024-01-01" });
      return response.end(
        JSON.stringify({ code: 400, error_code: "refresh_token_not_found", msg: "Invalid Refresh Token: Refresh Token Not Found" }),
      );
    }
    const admin = request.url.match(/^\/auth\/v1\/admin\/users\/([^/?]+)$/);
    if (admin) {
      if (request.headers.apikey !== serviceRoleKey) return json(response, 401, { message: "Invalid API key" });
      if (request.headers.authorization !== `Bearer ${serviceRoleKey}`) {
        return json(response, 403, { code: 403, error_code: "not_admin", msg: "User not allowed" });
      }
      const id = decodeURIComponent(admin[1]);
      if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id)) {
        return json(response, 404, { code: 404, error_code: "validation_failed", msg: "user_id must be an UUID" });
      }
      if (!users.has(id)) return json(response, 404, { code: 404, error_code: "user_not_found", msg: "User not found" });
      return json(response, 200, { id, aud: "authenticated", role: "authenticated" });
    }
    json(response, 404, { error: "not found" });
  });
  return { ...fake, users };
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

/** The spec's `PageSize`: `maximum: 250`. */
const MAX_PAGE_SIZE = 250;

/**
 * The Telnyx API: `GET`/`POST /v2/telephony_credentials` (paginated with `page[number]` and
 * `page[size]`; `filter[status]`, which the spec gives no values, is not applied), `PATCH` and
 * `DELETE .../{id}`, and `POST .../{id}/token` (201, the JWT as text/plain). A credential whose
 * `expires_at` has passed is expired: only deleting it is allowed. `tokenLifetimes` gives the
 * lifetime in seconds of each login token minted, in order; past its end tokens live a day.
 * `pageCap` serves pages of at most that many, whatever `page[size]` asks.
 */
export async function startFakeTelnyx({ tokenLifetimes = [], pageCap = MAX_PAGE_SIZE } = {}) {
  const credentials = [];
  const tokens = [];
  const requests = [];
  const isExpired = (c) => c.expired === true || (c.expires_at != null && Date.parse(c.expires_at) <= Date.now());
  // As Telnyx answers: `expired` a string as in the spec's example, `created_at` to the second.
  const view = ({ createdAtMs, ...record }) => ({ ...record, expired: String(isExpired(record)) });
  const errorList = (response, status, code, title) => json(response, status, { errors: [{ code, title }] });
  const errorObject = (response, status, errors) => json(response, status, { errors });
  const fake = await listen(async (request, response) => {
    const url = new URL(request.url, "http://127.0.0.1");
    requests.push({ method: request.method, path: url.pathname, query: Object.fromEntries(url.searchParams) });
    if (request.headers.authorization !== "Bearer KEY-test") {
      return errorList(response, 401, "10009", "Authentication failed");
    }
    const [, version, collection, id, action] = url.pathname.split("/");
    if (version !== "v2" || collection !== "telephony_credentials") {
      return errorList(response, 404, "10005", "Resource not found");
    }
    const credential = credentials.find((candidate) => candidate.id === id);
    if (request.method === "GET" && !id) {
      const number = Number(url.searchParams.get("page[number]") ?? 1);
      const size = Number(url.searchParams.get("page[size]") ?? 20);
      if (!(number >= 1 && size >= 1 && size <= MAX_PAGE_SIZE)) return errorList(response, 400, "10015", "Bad Request");
      const name = url.searchParams.get("filter[name]");
      const resourceId = url.searchParams.get("filter[resource_id]");
      const matching = credentials.filter(
        (c) => (name === null || c.name === name) && (resourceId === null || c.resource_id === resourceId),
      );
      const served = Math.min(size, pageCap);
      const data = matching.slice((number - 1) * served, number * served).map(view);
      const meta = {
        total_results: matching.length,
        total_pages: Math.max(1, Math.ceil(matching.length / served)),
        page_number: number,
        page_size: served,
      };
      return json(response, 200, { data, meta });
    }
    if (request.method === "POST" && !id) {
      const { connection_id: connectionId, name, expires_at: expiresAt } = await readJson(request);
      if (!connectionId) return errorObject(response, 422, { connection_id: ["can't be blank"] });
      const now = new Date();
      const created = {
        id: randomUUID(),
        record_type: "credential",
        name,
        resource_id: `connection:${connectionId}`,
        sip_username: `gencred${randomUUID().replaceAll("-", "").slice(0, 20)}`,
        expired: false,
        created_at: now.toISOString().slice(0, 19),
        expires_at: expiresAt ?? null,
        createdAtMs: now.getTime(),
      };
      credentials.push(created);
      return json(response, 201, { data: view(created) });
    }
    if (!credential) return errorList(response, 404, "10005", "Resource not found");
    if (request.method === "DELETE" && !action) {
      credentials.splice(credentials.indexOf(credential), 1);
      return json(response, 200, { data: view(credential) });
    }
    if (isExpired(credential)) {
      return errorObject(response, 422, { code: "10015", title: "Credential expired", detail: "An expired credential can only be deleted." });
    }
    if (request.method === "PATCH" && !action) {
      const { expires_at: expiresAt } = await readJson(request);
      if (expiresAt !== undefined) credential.expires_at = expiresAt;
      return json(response, 200, { data: view(credential) });
    }
    if (request.method === "POST" && action === "token") {
      const token = loginToken(credential.id, tokenLifetimes[tokens.length] ?? 86_400);
      tokens.push(token);
      response.writeHead(201, { "content-type": "text/plain" });
      return response.end(token);
    }
    errorList(response, 404, "10005", "Resource not found");
  });
  /** The credential a login token was minted for (its `sub`). */
  const credentialOf = (token) => {
    const { sub } = JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString());
    return credentials.find((c) => c.id === sub);
  };
  return { ...fake, credentials, tokens, requests, credentialOf };
}
