/**
 * What every adapter does around `core.verifyAccess`: tells a missing access request from a bad
 * one (optional auth), runs the application's `authorize` hook, and describes failures.
 */
import {
  BetterAuthError,
  ForbiddenError,
  PayloadTooLargeError,
  toBetterAuthError,
  type ErrorCode,
} from '../../src/errors'
import type {
  AccessCheckOptions,
  AccessPrincipal,
  BetterAuthServer,
  RequestContext,
} from '../../src/server/core'
import type { AdapterCore } from './core'

/**
 * Decides whether a verified caller may use the route: `false` answers 403 (BA306). It may be
 * async, and may throw a `BetterAuthError` (e.g. a `ForbiddenError` with its own message).
 */
export type Authorize<Attributes, Request, Source> = (
  principal: AccessPrincipal<Attributes, Request>,
  source: Source
) => boolean | Promise<boolean>

/**
 * Options of an access check, common to every adapter. Besides these, the core's per-route
 * options apply: `checkRevocation` (refuse tokens of devices no longer active, of suspended
 * identities and of ended sessions, within the core's `revocationCacheMs`) and `rateLimit`
 * (`{ ip?, identity? }` rules for this route).
 */
export interface AccessOptions<
  Attributes = unknown,
  Request = unknown,
  Source = unknown,
> extends AccessCheckOptions {
  /** Authorization of a verified caller; see {@link Authorize}. */
  authorize?: Authorize<Attributes, Request, Source>
}

/**
 * Verifies an access request and authorizes it. Resolves to the principal, or to `undefined` when
 * credentials are optional and absent; rejects with a BetterAuthError (or what `authorize` threw).
 */
export async function checkAccess<Attributes, Request, Source>(
  core: AdapterCore<Attributes>,
  body: string | Uint8Array,
  context: RequestContext,
  source: Source,
  options: AccessOptions<Attributes, Request, Source>
): Promise<AccessPrincipal<Attributes, Request> | undefined> {
  return settleAccess(() => core.verifyAccess<Request>(body, context, options), options, source)
}

/**
 * The one outcome of an access check in either form: `verify`'s principal, authorized; `undefined`
 * when credentials are optional and the request carries none (BA404); otherwise its error (or what
 * `authorize` threw, or 403 BA306 when it said no).
 */
export async function settleAccess<Attributes, Request, Source>(
  verify: () => Promise<AccessPrincipal<Attributes, Request>>,
  options: AccessOptions<Attributes, Request, Source>,
  source: Source
): Promise<AccessPrincipal<Attributes, Request> | undefined> {
  let principal: AccessPrincipal<Attributes, Request>
  try {
    principal = await verify()
  } catch (error) {
    // The core answers BA404 for a request that carries no access request at all.
    if (
      options.credentialsRequired === false &&
      error instanceof BetterAuthError &&
      error.code === 'BA404'
    ) {
      return undefined
    }
    throw error
  }
  if (options.authorize !== undefined && !(await options.authorize(principal, source))) {
    throw new ForbiddenError()
  }
  return principal
}

/**
 * The error an adapter hands to the application instead of answering (`failWithError` in Express
 * and Koa): it carries the HTTP status, the protocol error code, the headers the answer should
 * have (`WWW-Authenticate` on 401) and the original error as `cause`. Its `name` is
 * `UnauthorizedError` for a 401 (as before) and `BetterAuthHttpError` for any other status.
 */
export class BetterAuthHttpError extends Error {
  override readonly name: string
  /** HTTP status: 401, 403 (authorize refused), 400, 413, 422, 429 or 503. */
  readonly status: number
  /** Same as `status` (for error handlers that read `statusCode`). */
  readonly statusCode: number
  /** The protocol error code, e.g. `BA401`. */
  readonly code: ErrorCode
  /** Whether the message may be shown to the client (false for 5xx). */
  readonly expose: boolean
  /** Headers the answer should carry (e.g. `www-authenticate`, `retry-after`). */
  readonly headers: Record<string, string>
  /** The wire body `{"error":{"code","message"}}`. */
  readonly body: string
  override readonly cause: BetterAuthError

  constructor(error: BetterAuthError, headers: Record<string, string>, body: string) {
    super(error.message, { cause: error })
    this.name = error.status === 401 ? 'UnauthorizedError' : 'BetterAuthHttpError'
    this.cause = error
    this.status = error.status
    this.statusCode = error.status
    this.code = error.code
    this.expose = error.status < 500
    const { 'content-type': _type, ...rest } = headers
    this.headers = rest
    this.body = body
  }
}

/**
 * @deprecated Use {@link BetterAuthHttpError}: the same class (so `instanceof` holds either way),
 * named for every status it carries, not only 401.
 */
export const UnauthorizedError = BetterAuthHttpError
/** @deprecated Use {@link BetterAuthHttpError}. */
export type UnauthorizedError = BetterAuthHttpError

/** The error result of a failure, and the BetterAuthHttpError carrying it. */
export function failure(
  core: Pick<AdapterCore, 'errorResult'>,
  error: unknown,
  context: Record<string, unknown>
): { status: number; headers: Record<string, string>; body: string; error: BetterAuthHttpError } {
  const e = toBetterAuthError(error)
  const result = core.errorResult(e, context)
  return { ...result, error: new BetterAuthHttpError(e, result.headers, result.body) }
}

/** What an adapter does with a failed access check (see {@link accessFailure}). */
export type FailureOutcome =
  /** Not the protocol's error (e.g. thrown by `authorize`), with `failWithError`: the app decides. */
  | { kind: 'pass'; error: unknown }
  /** Answer `result`, or hand `error` to the app with `failWithError`. */
  | {
      kind: 'answer'
      result: { status: number; headers: Record<string, string>; body: string }
      error: BetterAuthHttpError
    }

/**
 * The one failure path of access checks in every adapter: the error answer (logged by the core;
 * after a body over the limit the connection closes), or the error for the application.
 */
export function accessFailure(
  core: Pick<AdapterCore, 'errorResult'>,
  error: unknown,
  options: {
    failWithError?: boolean | undefined
    context: RequestContext
    setHeader: (name: string, value: string) => unknown
  }
): FailureOutcome {
  if (options.failWithError === true && !(error instanceof BetterAuthError)) {
    return { kind: 'pass', error }
  }
  if (error instanceof PayloadTooLargeError) options.setHeader('connection', 'close')
  const { error: httpError, ...result } = failure(core, error, {
    route: options.context.path,
    ip: options.context.ip,
  })
  return { kind: 'answer', result, error: httpError }
}

/** The core of an adapter's `betterAuth(...)`: an existing core, or one built from options. */
export function isCore<Attributes>(value: unknown): value is BetterAuthServer<Attributes> {
  const v = value as Partial<AdapterCore<Attributes>> | undefined
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof v.verifyAccess === 'function' &&
    typeof v.handle === 'function' &&
    typeof v.respond === 'function'
  )
}

/** Request path without a trailing slash (Express and Koa route `/a/` like `/a`). */
export function normalizePath(path: string): string {
  return path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path
}

/** A mount prefix as `/a/b` (leading slash, no trailing one), or `''` for none. */
export function normalizePrefix(prefix: string | undefined): string {
  const trimmed = (prefix ?? '').replace(/^\/+|\/+$/g, '')
  return trimmed === '' ? '' : `/${trimmed}`
}

/** The path the OpenAPI document is served at under `prefix`, or `undefined` when not served. */
export function openapiPath(
  prefix: string | undefined,
  openapi: boolean | string | undefined
): string | undefined {
  if (openapi === undefined || openapi === false) return undefined
  const path = openapi === true ? '/openapi.json' : `/${openapi.replace(/^\/+/, '')}`
  return normalizePrefix(prefix) + path
}

/** Principals by request object, so helpers find them whatever property name was configured. */
export { principals } from './principals'
