/** What an adapter needs of the server core: the `AdapterCore` interface every adapter takes. */
import type { BetterAuthError } from '../../src/errors'
import type {
  AccessCheckOptions,
  AccessPrincipal,
  HandlerResult,
  HeaderAccessRequest,
  Logger,
  RequestContext,
} from '../../src/server/core'
import type { ServerKeys } from '../../src/server/keys'
import { DEFAULT_BODY_LIMIT } from '../../src/server/options'
import { JSON_CONTENT_TYPE } from '../../src/server/http'
import type { Endpoint, RouteInfo } from '../../src/server/routes'
import type { ServerStore } from '../../src/stores/types'

export { DEFAULT_BODY_LIMIT, JSON_CONTENT_TYPE }

/**
 * The part of `BetterAuthServer` adapters use. Any core is one, whatever its `Attributes`: the
 * adapters take this rather than `BetterAuthServer<unknown>`, so they need no casts.
 */
export interface AdapterCore<Attributes = unknown> {
  readonly limits: { readonly maxBodyBytes?: number }
  readonly logger: Logger
  /** Verify re-serialized bodies (see `BetterAuthOptions.allowReserializedBody`). @default true */
  readonly allowReserializedBody?: boolean
  readonly store: ServerStore
  handle(
    endpoint: Endpoint,
    body: string | Uint8Array,
    context?: RequestContext
  ): Promise<HandlerResult>
  verifyAccess<Request = unknown>(
    body: string | Uint8Array,
    context?: RequestContext,
    options?: AccessCheckOptions
  ): Promise<AccessPrincipal<Attributes, Request>>
  respond(nonce: string, response: unknown): Promise<string>
  verifyHeaderAccess<Request = unknown>(
    request: HeaderAccessRequest<Request>,
    context?: RequestContext,
    options?: AccessCheckOptions
  ): Promise<AccessPrincipal<Attributes, Request>>
  signHeaderResponse(reply: {
    status: number
    headers?: Record<string, string | string[] | undefined>
    body?: Uint8Array
    requestSignature: Uint8Array
  }): Promise<Record<string, string>>
  errorResult(error: unknown, context?: Record<string, unknown>): HandlerResult
  routes(prefix?: string): RouteInfo[]
  keys(): Promise<ServerKeys>
  ready(): Promise<void>
  responsePublicKey(): Promise<string>
  close(): Promise<void>
}

/** The largest body an adapter reads for this core. */
export const bodyLimit = (core: Pick<AdapterCore, 'limits'>): number =>
  core.limits.maxBodyBytes ?? DEFAULT_BODY_LIMIT

/**
 * The status of a protected route's successful replies (its `status` option): a 2xx that carries
 * a body, since the reply is the handler's data (signed into an envelope, or JSON with the
 * response-signature headers). Throws TypeError for anything else: 204, 205 and 206 included.
 */
export function successStatus(status: number | undefined): number {
  if (status === undefined) return 200
  if (
    !Number.isInteger(status) ||
    status < 200 ||
    status > 299 ||
    (status >= 204 && status <= 206)
  ) {
    throw new TypeError('status must be a 2xx with a body (200–203, 207–299)')
  }
  return status
}

/** The wire answer of an error, without a core to log it. */
export function plainErrorResult(error: BetterAuthError): HandlerResult {
  return {
    status: error.status,
    headers: { 'content-type': JSON_CONTENT_TYPE },
    body: JSON.stringify(error.toBody(false)),
  }
}
