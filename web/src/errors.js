// The console's one error type: what went wrong, as a code and a message for the operator.

/** An error to show: a protocol error code (docs/protocol.md) or a client-side one. */
export class ConsoleError extends Error {
  /**
   * @param {string} code
   * @param {string} message
   */
  constructor(code, message) {
    super(message);
    this.name = "ConsoleError";
    this.code = code;
  }
}

/**
 * The code and message to show for anything thrown: its own for a `ConsoleError`, `client`
 * for anything else.
 * @param {unknown} error
 * @returns {{code: string, message: string}}
 */
export function errorFields(error) {
  if (error instanceof ConsoleError) return { code: error.code, message: error.message };
  if (error instanceof Error) return { code: "client", message: error.message };
  return { code: "client", message: String(error) };
}
