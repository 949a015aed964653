// The one error type of the package: what the credentials service refused, with its code.

/**
 * A refusal of the credentials service, or a failure to reach it. `message` is the service's
 * own sentence (meant for the person in front of the page), `code` its stable code to switch
 * on (`rate_limited`, `token_expired`, … see docs/api.md#errors), `status` the HTTP status (0
 * when no answer came), and `retryAfter` the seconds its `Retry-After` header asked to wait.
 *
 * One class with a code, the way supabase-js's AuthError carries `code` and `status`.
 */
export class CredentialError extends Error {
  /**
   * @param {string} message
   * @param {{ code: string, status: number, retryAfter?: number, requestId?: string, cause?: unknown }} details
   */
  constructor(message, { code, status, retryAfter, requestId, cause }) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = "CredentialError";
    this.code = code;
    this.status = status;
    this.retryAfter = retryAfter;
    this.requestId = requestId;
  }
}
