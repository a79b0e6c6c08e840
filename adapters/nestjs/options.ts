/** Options of BetterAuthModule and its injection tokens. */
import type { ExecutionContext } from '@nestjs/common'
import type {
  AccessCheckOptions,
  AccessPrincipal,
  BetterAuthOptions,
  BetterAuthServer,
} from '../../src/server/core'
import type { OpenApiOptions } from '../../src/server/openapi'

/**
 * Decides whether a verified caller may use the route (`false`: 403, BA306). `Attributes` types
 * the token's attributes (`BetterAuthModule.forRoot<Attributes>`, `@BetterAuthAccess<Attributes>`).
 */
export type NestAuthorize<Attributes = unknown> = (
  principal: AccessPrincipal<Attributes, unknown>,
  context: ExecutionContext
) => boolean | Promise<boolean>

/**
 * Options of `BetterAuthModule.forRoot` (and what `forRootAsync` factories return); `Attributes`
 * types the attributes tokens carry (`attributes`, `authorize`, `auth`).
 */
export interface BetterAuthModuleOptions<
  Attributes = unknown,
> extends BetterAuthOptions<Attributes> {
  /** An existing core to use (the other core options are then ignored). */
  auth?: BetterAuthServer<Attributes>
  /** Path prefix of the protocol endpoints (after Nest's global prefix, if any). @default '' */
  prefix?: string
  /** Mount the protocol endpoints and `/key/response`. @default true */
  endpoints?: boolean
  /**
   * Serve the OpenAPI 3.1 document of the endpoints with GET at this path under the prefix
   * (`true`: `/openapi.json`). @default false
   */
  openapi?: boolean | string
  /** `info`/`servers` of the served OpenAPI document. */
  openapiOptions?: OpenApiOptions
  /** Where the guard puts the principal on the request. @default 'betterAuth' */
  requestProperty?: string
  /**
   * The client IP given to the core (rate limiting, events). @default `request.ip` (Express's
   * honours its `trust proxy` setting), else the socket's peer
   */
  clientIp?: (request: { ip?: string; headers?: unknown }) => string | undefined
  /** Set `req.body` (so `@Body()`) to the verified request data. @default true */
  replaceBody?: boolean
  /** Authorization applied on every protected route, before the route's own. */
  authorize?: NestAuthorize<Attributes>
}

/** Extras of `forRoot` / `forRootAsync`, read when the module is defined. */
export interface BetterAuthModuleExtras {
  /** Register the module globally, so any module's guards and interceptors resolve. @default true */
  isGlobal?: boolean
  /**
   * Protect every route with a global guard, which also has every protected reply signed; opt
   * routes out with `@AllowAnonymous()`. @default false
   */
  globalGuard?: boolean
}

/**
 * Per-route options of `@BetterAuthAccess()`, on a controller or a handler. A handler's options
 * override its controller's field by field, and so do its decorators (`@AllowAnonymous()`,
 * `@OptionalAccess()`, `@BetterAuthAccess()`), except `authorize`: the module's, the controller's
 * and the handler's hooks must all pass. The core's per-route options apply too
 * (`checkRevocation`, `rateLimit`).
 */
export interface AccessMetadata<Attributes = unknown> extends AccessCheckOptions {
  /** Like `credentialsRequired` of the other adapters; `@OptionalAccess()` sets it. @default true */
  credentialsRequired?: boolean
  /** Authorization of this controller or route (after the module's). */
  authorize?: NestAuthorize<Attributes>
}

export const ACCESS_METADATA = 'better-auth:access'
export const ALLOW_ANONYMOUS = 'better-auth:allow-anonymous'
export const OPTIONAL_ACCESS = 'better-auth:optional'

/** Injection token of the module options. */
export const BETTER_AUTH_OPTIONS = 'BETTER_AUTH_MODULE_OPTIONS'
