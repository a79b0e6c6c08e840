/** The access guard: verifies the access request of a route and attaches the principal. */
import { Inject, Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common'
import { Reflector } from '@nestjs/core'
import { BetterAuthError, ForbiddenError, InternalError } from '../../src/errors'
import { BetterAuthServer, type AccessPrincipal } from '../../src/server/core'
import { checkAccess, failure, principals, type AccessOptions } from '../shared/access'
import {
  DEFAULT_BODY_LIMIT,
  closeAfterOverlongBody,
  nodeRawBody,
  parsedForHandler,
  requestPath,
  warnReserialized,
  type ParsedBody,
} from '../shared/node'
import { toHttpException } from './exceptions'
import { RAW_BODY_ADVICE, nodeRequestOf, setResponseHeader, type PlatformResponse } from './http'
import {
  ACCESS_METADATA,
  ALLOW_ANONYMOUS,
  BETTER_AUTH_OPTIONS,
  OPTIONAL_ACCESS,
  type AccessMetadata,
  type BetterAuthModuleOptions,
  type NestAuthorize,
} from './options'
import type { IncomingMessage } from 'node:http'

/**
 * The HTTP request as the guard sees it: Express's request (a node:http one), or Fastify's, which
 * keeps the node:http request as `raw`.
 */
export type GuardRequest = Partial<IncomingMessage> & {
  raw?: IncomingMessage
  ip?: string
  body?: unknown
  rawBody?: unknown
  originalUrl?: string
  [property: string]: unknown
}

/**
 * Verifies the access request of routes marked `@BetterAuthAccess()` (or of every route in
 * global-guard mode, except `@AllowAnonymous()` ones). Subclass it to change where the request
 * comes from (`getRequest`) or what a failure does (`handleRequest`).
 */
@Injectable()
export class BetterAuthGuard implements CanActivate {
  /** Whether the guard protects routes without `@BetterAuthAccess()` (global-guard mode). */
  protected readonly global: boolean = false

  constructor(
    @Inject(Reflector) protected readonly reflector: Reflector,
    @Inject(BetterAuthServer) protected readonly auth: BetterAuthServer<unknown>,
    @Inject(BETTER_AUTH_OPTIONS) protected readonly options: BetterAuthModuleOptions
  ) {}

  /** The request to verify. Override for other transports. */
  getRequest(context: ExecutionContext): GuardRequest {
    return context.switchToHttp().getRequest<GuardRequest>()
  }

  /**
   * Turns the outcome into the principal or an exception. The default throws the failure as a
   * Nest exception with the protocol body (and sets `WWW-Authenticate` on 401); errors that are
   * not the protocol's (thrown by an `authorize` hook) are rethrown as they are. Return a
   * principal (or `undefined` to let the request through anonymously) to override.
   */
  handleRequest(
    error: unknown,
    principal: AccessPrincipal<unknown, unknown> | undefined,
    context: ExecutionContext
  ): AccessPrincipal<unknown, unknown> | undefined {
    if (error === undefined) return principal
    if (!(error instanceof BetterAuthError)) throw error
    const request = this.getRequest(context)
    const result = failure(this.auth, error, { route: requestPath(request) })
    const response = context.switchToHttp().getResponse<PlatformResponse>()
    closeAfterOverlongBody(error, (name, value) => setResponseHeader(response, name, value))
    for (const [name, value] of Object.entries(result.error.headers)) {
      setResponseHeader(response, name, value)
    }
    throw toHttpException(result.error)
  }

  /** The access options of a handler, built once per handler (the core caches per object). */
  private readonly routeOptions = new WeakMap<object, RouteOptions>()

  private optionsFor(context: ExecutionContext): RouteOptions | undefined {
    const handler = context.getHandler()
    const cached = this.routeOptions.get(handler)
    if (cached !== undefined) return cached
    const targets = [handler, context.getClass()]
    const onHandler = this.reflector.get<AccessMetadata | undefined>(ACCESS_METADATA, handler)
    const onClass = this.reflector.get<AccessMetadata | undefined>(
      ACCESS_METADATA,
      context.getClass()
    )
    if (onHandler === undefined && onClass === undefined && !this.global) return undefined
    const hooks = [this.options.authorize, onClass?.authorize, onHandler?.authorize].filter(
      (hook): hook is NestAuthorize => hook !== undefined
    )
    const { authorize: _c, ...classRest } = onClass ?? {}
    const { authorize: _h, ...handlerRest } = onHandler ?? {}
    const optional =
      this.reflector.getAllAndOverride<boolean>(OPTIONAL_ACCESS, targets) === true ||
      (onHandler?.credentialsRequired ?? onClass?.credentialsRequired) === false
    const options: RouteOptions = {
      ...classRest,
      ...handlerRest,
      credentialsRequired: !optional,
    }
    if (hooks.length > 0) {
      options.authorize = async (principal, ctx) => {
        for (const hook of hooks) if (!(await hook(principal, ctx))) return false
        return true
      }
    }
    this.routeOptions.set(handler, options)
    return options
  }

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const targets = [context.getHandler(), context.getClass()]
    if (this.reflector.getAllAndOverride<boolean>(ALLOW_ANONYMOUS, targets) === true) return true
    const options = this.optionsFor(context)
    if (options === undefined) return true
    const request = this.getRequest(context)

    let principal: AccessPrincipal<unknown, unknown> | undefined
    let error: unknown
    try {
      const verified = principals.get(request)
      if (verified !== undefined) {
        // Verified already (the guard applied twice): only this route's authorization remains.
        if (options.authorize !== undefined && !(await options.authorize(verified, context))) {
          throw new ForbiddenError()
        }
        return true
      }
      const limit = this.auth.limits.maxBodyBytes ?? DEFAULT_BODY_LIMIT
      const raw = nodeRequestOf(request)
      const { body, source } = await nodeRawBody(raw, request as ParsedBody, limit)
      if (source === 'reserialized') warnReserialized(this.auth, RAW_BODY_ADVICE)
      principal = await checkAccess(
        this.auth,
        body,
        { ip: request.ip ?? raw.socket?.remoteAddress, path: requestPath(request) },
        context,
        options
      )
      // A body the guard read itself (no parser took it) stays available to the handler.
      if (principal === undefined && source === 'stream') request.body = parsedForHandler(body)
    } catch (caught) {
      error = caught ?? new InternalError()
    }
    const accepted = this.handleRequest(error, principal, context)
    if (accepted !== undefined) {
      principals.set(request, accepted)
      request[this.options.requestProperty ?? 'betterAuth'] = accepted
      if (this.options.replaceBody !== false) request.body = accepted.request
    }
    return true
  }
}

type RouteOptions = AccessOptions<unknown, unknown, ExecutionContext>

/** The guard registered as `APP_GUARD` in global-guard mode. */
@Injectable()
export class BetterAuthGlobalGuard extends BetterAuthGuard {
  protected override readonly global: boolean = true
}
