/** The error base class: every error ferry raises on purpose has a stable code and a message that says what to do. */

/** Stable error codes. Scripts and tests may match on these; never rename one. */
export type FerryErrorCode =
  | 'FERRY_CONFIG_INVALID'
  | 'FERRY_USAGE'
  | 'FERRY_TOKEN_INVALID'
  | 'FERRY_TOKEN_REFUSED'
  | 'FERRY_HOSTKEY_MISMATCH'
  | 'FERRY_TLS_PIN_MISMATCH'
  | 'FERRY_AUTH_REFUSED'
  | 'FERRY_DEVICE_REVOKED'
  | 'FERRY_PERMISSION_DENIED'
  | 'FERRY_NOT_FOUND'
  | 'FERRY_CONFLICT'
  | 'FERRY_STATE_INVALID'
  | 'FERRY_CONNECT_FAILED'
  | 'FERRY_TIMEOUT'
  | 'FERRY_STORE'
  | 'FERRY_TOO_LARGE'
  | 'FERRY_INTERNAL';

/** An expected failure: the message is for the user, the code is for programs. */
export class FerryError extends Error {
  readonly code: FerryErrorCode;
  constructor(code: FerryErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'FerryError';
    this.code = code;
  }
}

/** True when `err` is a FerryError, optionally with the given code. */
export function isFerryError(err: unknown, code?: FerryErrorCode): err is FerryError {
  return err instanceof FerryError && (code === undefined || err.code === code);
}
