/**
 * Error taxonomy.
 *
 * Codes BA101–BA502 are the protocol's shared taxonomy. The remaining codes fill what that
 * taxonomy lacks and are this project's own; they are listed in `ERROR_CODES` and in the README.
 * Every error carries the HTTP status it maps to. `context` holds diagnostic details for logs;
 * it never reaches a client unless the server runs with `debug: true`.
 */

export const ERROR_CODES = {
  BA101: { status: 400, title: 'invalid message' },
  BA102: { status: 400, title: 'invalid identity' },
  BA103: { status: 400, title: 'invalid device' },
  BA104: { status: 401, title: 'invalid hash' },
  BA201: { status: 401, title: 'invalid signature' },
  BA202: { status: 401, title: 'unknown server key' },
  BA203: { status: 502, title: 'incorrect nonce' },
  BA204: { status: 502, title: 'invalid server response' },
  BA301: { status: 401, title: 'unknown identity or device' },
  BA302: { status: 400, title: 'mismatched identities' },
  BA303: { status: 401, title: 'invalid session challenge' },
  BA304: { status: 401, title: 'replayed message' },
  BA305: { status: 409, title: 'conflict' },
  BA306: { status: 403, title: 'forbidden' },
  BA307: { status: 403, title: 'identity suspended' },
  BA401: { status: 401, title: 'expired token' },
  BA402: { status: 401, title: 'invalid token' },
  BA403: { status: 401, title: 'future token' },
  BA404: { status: 401, title: 'credentials required' },
  BA501: { status: 422, title: 'stale request' },
  BA502: { status: 422, title: 'future request' },
  BA600: { status: 500, title: 'internal error' },
  BA601: { status: 429, title: 'rate limited' },
  BA602: { status: 503, title: 'storage unavailable' },
  BA603: { status: 413, title: 'payload too large' },
  BA604: { status: 404, title: 'not found' },
  BA605: { status: 405, title: 'method not allowed' },
  BA606: { status: 415, title: 'unsupported media type' },
  BA607: { status: 401, title: 'replay state reset' },
  BA608: { status: 404, title: 'unknown identity or device' },
  BA609: { status: 501, title: 'not supported' },
} as const

export type ErrorCode = keyof typeof ERROR_CODES

export interface ErrorOptions {
  /** Diagnostic details: logged, and shown to clients only in debug mode. */
  context?: Record<string, unknown>
  cause?: unknown
  /** Overrides the status the code maps to. */
  status?: number
}

/** Marks the errors of every copy of this package (its CommonJS and ES module builds). */
const ERROR_BRAND = Symbol.for('better-auth-protocol.BetterAuthError')

/** Base class of every error this library throws. */
export class BetterAuthError extends Error {
  readonly code: ErrorCode
  readonly status: number
  readonly context: Record<string, unknown> | undefined

  /**
   * `instanceof` also holds for errors made by the other build of this package (an application
   * that both imports and requires it loads two copies): they carry the brand, and a subclass is
   * matched by its name along the prototype chain.
   */
  static override [Symbol.hasInstance](value: unknown): boolean {
    if (Function.prototype[Symbol.hasInstance].call(this, value)) return true
    if (typeof value !== 'object' || value === null || !(ERROR_BRAND in value)) return false
    if (this === BetterAuthError) return true
    for (let p: unknown = Object.getPrototypeOf(value); p !== null; p = Object.getPrototypeOf(p)) {
      const own = Object.getOwnPropertyDescriptor(p, 'constructor')?.value as unknown
      if (typeof own === 'function' && own.name === this.name) return true
    }
    return false
  }

  constructor(code: ErrorCode, message: string, options: ErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    Object.defineProperty(this, ERROR_BRAND, { value: true })
    this.name = new.target.name
    this.code = code
    this.status = options.status ?? ERROR_CODES[code].status
    this.context = options.context
  }

  /** The wire form: `{"error":{"code","message"}}`, with `context` only when asked. */
  toBody(debug = false): { error: { code: string; message: string; context?: unknown } } {
    const error: { code: string; message: string; context?: unknown } = {
      code: this.code,
      message: this.message,
    }
    if (debug && this.context !== undefined) error.context = this.context
    return { error }
  }

  toJSON(): { error: { code: string; message: string } } {
    return this.toBody(false)
  }
}

export class InvalidMessageError extends BetterAuthError {
  readonly field: string | undefined
  constructor(field?: string, details?: string, options: ErrorOptions = {}) {
    const what = field === undefined ? 'message is malformed' : `${field}: ${details ?? 'invalid'}`
    super('BA101', `invalid message (${what})`, options)
    this.field = field
  }
}

export class InvalidIdentityError extends BetterAuthError {
  constructor(options: ErrorOptions = {}) {
    super('BA102', 'identity does not derive from the presented keys', options)
  }
}

export class InvalidDeviceError extends BetterAuthError {
  constructor(options: ErrorOptions = {}) {
    super('BA103', 'device does not equal hash(publicKey + rotationHash)', options)
  }
}

export class InvalidHashError extends BetterAuthError {
  constructor(kind: 'rotation' | 'recovery', options: ErrorOptions = {}) {
    super('BA104', `${kind} hash does not match the presented key`, options)
  }
}

export class InvalidSignatureError extends BetterAuthError {
  constructor(what = 'message', options: ErrorOptions = {}) {
    super('BA201', `${what} signature does not verify`, options)
  }
}

export class UnknownServerKeyError extends BetterAuthError {
  constructor(options: ErrorOptions = {}) {
    super('BA202', 'token was signed by an unknown server key', options)
  }
}

export class IncorrectNonceError extends BetterAuthError {
  constructor(expected: string, actual: unknown) {
    super('BA203', 'response nonce does not match request nonce', {
      context: { expected, actual },
    })
  }
}

export class InvalidResponseError extends BetterAuthError {
  constructor(details: string, options: ErrorOptions = {}) {
    super('BA204', `invalid server response (${details})`, options)
  }
}

export class UnknownAccountError extends BetterAuthError {
  constructor(what = 'identity or device', options: ErrorOptions = {}) {
    super('BA301', `unknown or inactive ${what}`, options)
  }
}

export class MismatchedIdentitiesError extends BetterAuthError {
  constructor(options: ErrorOptions = {}) {
    super('BA302', 'link container identity does not match request identity', options)
  }
}

export class InvalidChallengeError extends BetterAuthError {
  constructor(options: ErrorOptions = {}) {
    super('BA303', 'session challenge is unknown, expired or already used', options)
  }
}

export class ReplayError extends BetterAuthError {
  constructor(what: string, options: ErrorOptions = {}) {
    super('BA304', `${what} was already used`, options)
  }
}

export class ConflictError extends BetterAuthError {
  constructor(what: string, options: ErrorOptions = {}) {
    super('BA305', `${what} already exists`, options)
  }
}

export class ForbiddenError extends BetterAuthError {
  constructor(message = 'access denied', options: ErrorOptions = {}) {
    super('BA306', message, options)
  }
}

/**
 * The identity is suspended by an administrator: it gets no new session and no refresh, and on
 * routes with `checkRevocation` its tokens are refused, until it is reinstated.
 */
export class AccountSuspendedError extends BetterAuthError {
  constructor(options: ErrorOptions = {}) {
    super('BA307', 'identity is suspended', options)
  }
}

export class ExpiredTokenError extends BetterAuthError {
  constructor(kind: 'access' | 'refresh', options: ErrorOptions = {}) {
    super('BA401', kind === 'access' ? 'token has expired' : 'refresh window has closed', options)
  }
}

/**
 * The token was issued at or before the moment an administrator ended the sessions of its
 * identity or device: refused at refresh and, on routes with `checkRevocation`, at access. Its
 * code is BA401 (expired), so clients do what they do for an expired token: refresh, and when
 * that is refused too, sign in again with the device key.
 */
export class SessionEndedError extends BetterAuthError {
  constructor(options: ErrorOptions = {}) {
    super('BA401', 'the session was ended; sign in again', options)
  }
}

export class InvalidTokenError extends BetterAuthError {
  constructor(details: string, options: ErrorOptions = {}) {
    super('BA402', `invalid token (${details})`, options)
  }
}

export class FutureTokenError extends BetterAuthError {
  constructor(options: ErrorOptions = {}) {
    super('BA403', 'token issuedAt is in the future', options)
  }
}

export class CredentialsRequiredError extends BetterAuthError {
  constructor(options: ErrorOptions = {}) {
    super('BA404', 'an access request is required', options)
  }
}

export class StaleRequestError extends BetterAuthError {
  constructor(options: ErrorOptions = {}) {
    super('BA501', 'request timestamp is too old', options)
  }
}

export class FutureRequestError extends BetterAuthError {
  constructor(options: ErrorOptions = {}) {
    super('BA502', 'request timestamp is in the future', options)
  }
}

export class InternalError extends BetterAuthError {
  constructor(options: ErrorOptions = {}) {
    super('BA600', 'internal error', options)
  }
}

export class RateLimitedError extends BetterAuthError {
  /** Seconds until a retry may succeed. */
  readonly retryAfter: number
  constructor(retryAfterSeconds: number, options: ErrorOptions = {}) {
    super('BA601', 'too many requests', options)
    this.retryAfter = Math.max(1, Math.ceil(retryAfterSeconds))
  }
}

export class StorageUnavailableError extends BetterAuthError {
  constructor(options: ErrorOptions = {}) {
    super('BA602', 'storage unavailable', options)
  }
}

export class PayloadTooLargeError extends BetterAuthError {
  constructor(limit: number, options: ErrorOptions = {}) {
    super('BA603', `request body exceeds ${limit} bytes`, options)
  }
}

export class NotFoundError extends BetterAuthError {
  constructor(options: ErrorOptions = {}) {
    super('BA604', 'not found', options)
  }
}

export class MethodNotAllowedError extends BetterAuthError {
  constructor(options: ErrorOptions = {}) {
    super('BA605', 'method not allowed', options)
  }
}

export class UnsupportedMediaTypeError extends BetterAuthError {
  constructor(options: ErrorOptions = {}, message = 'request body must be application/json') {
    super('BA606', message, options)
  }
}

/**
 * The ephemeral store lost its replay state (e.g. a Redis restarted empty) after this message could
 * already have been accepted: it is refused, since it might be a replay. A client signs a new access
 * request; a refresh whose token predates the reset needs a new session.
 */
export class ReplayStateResetError extends BetterAuthError {
  constructor(options: ErrorOptions = {}) {
    super('BA607', 'request predates a reset of the replay state; sign a new one', options)
  }
}

/** An administrative call named an identity, or a device of it, that does not exist (404). */
export class AdminNotFoundError extends BetterAuthError {
  /** What was not found. */
  readonly subject: 'identity' | 'device'
  constructor(subject: 'identity' | 'device', options: ErrorOptions = {}) {
    super('BA608', `unknown ${subject}; nothing was changed`, options)
    this.subject = subject
  }
}

/** The store does not implement administration (`AdminAccountStore`): 501. */
export class AdminUnsupportedError extends BetterAuthError {
  constructor(options: ErrorOptions = {}) {
    super(
      'BA609',
      'the account store does not support administration (it lacks the AdminAccountStore ' +
        'methods; the memory, SQLite and PostgreSQL stores have them)',
      options
    )
  }
}

/** Wraps anything thrown into a BetterAuthError; unknown errors become BA600 (500). */
export function toBetterAuthError(error: unknown): BetterAuthError {
  if (error instanceof BetterAuthError) return error
  return new InternalError({ cause: error })
}
