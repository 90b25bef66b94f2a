// Signing in: `POST /api/auth/login` (docs/protocol.md, REST) for the JWT that opens the
// `/operator` connection.

import { ConsoleError } from "./errors.js";

/**
 * What the login reply means: the token and callsign, or the `ConsoleError` the server's
 * refusal stands for.
 * @param {{ok: boolean, status: number}} response
 * @param {any} body the reply's JSON, or null when it had none
 * @returns {{token: string, callsign: string | null}}
 */
export function loginReply(response, body) {
  if (response.ok && typeof body?.token === "string") {
    const callsign = typeof body.callsign === "string" ? body.callsign : null;
    return { token: body.token, callsign };
  }
  throw new ConsoleError(
    typeof body?.error?.code === "string" ? body.error.code : "login_failed",
    typeof body?.error?.message === "string"
      ? body.error.message
      : `Sign-in failed (HTTP ${response.status}).`,
  );
}

/**
 * Signs in. Throws `ConsoleError` when the server refuses, anything else when it cannot be
 * reached.
 * @param {string} email
 * @param {string} password
 * @param {typeof fetch} [fetchFn]
 */
export async function signIn(email, password, fetchFn = (input, init) => fetch(input, init)) {
  const response = await fetchFn("/api/auth/login", {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify({ email, password }),
  });
  const body = await response.json().catch(() => null);
  return loginReply(response, body);
}
