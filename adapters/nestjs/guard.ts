/**
 * The access guard: verifies the access request of a route, attaches the principal and arranges
 * the signed reply.
 */
import { Inject, Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common'
import { Reflector } from '@nestjs/core'
import { BetterAuthError, InternalError } from '../../src/errors'
import { BetterAuthServer, type AccessPrincipal, type RequestContext } from '../../src/server/core'
import { accessFailure } from '../shared/access'
import {
  attachPrincipal,
  nodeAccess,
  requestPath,
  type NodeAccessOptions,
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
import { arrangeSignedReply } from './reply'
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
 * global-guard mode, except `@AllowAnonymous()` ones), and arranges that the reply to a verified
 * request is signed (see ./reply). Subclass it to change where the request comes from
 * (`getRequest`) or what a failure does (`handleRequest`).
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
    const response = context.switchToHttp().getResponse<PlatformResponse>()
    const setHeader = (name: string, value: string) => setResponseHeader(response, name, value)
    const outcome = accessFailure(this.auth, error, {
      context: { path: requestPath(request) },
      setHeader,
    })
    if (outcome.kind === 'pass') throw outcome.error
    for (const [name, value] of Object.entries(outcome.error.headers)) setHeader(name, value)
    throw toHttpException(outcome.error)
  }

  /** What the guard does on a handler, worked out once per handler (the core caches per object). */
  private readonly routeOptions = new WeakMap<object, RouteOptions | typeof ANONYMOUS>()

  /**
   * The access options of the route, or `ANONYMOUS` when it is not checked. Each setting is a
   * field resolved handler first, then controller (Reflector's `getAllAndOverride` order): whether
   * the route is anonymous, whether credentials are required, and each `@BetterAuthAccess()`
   * option. Only `authorize` adds up: the module's, the controller's and the handler's hooks must
   * all pass.
   */
  private optionsFor(context: ExecutionContext): RouteOptions | typeof ANONYMOUS {
    const handler = context.getHandler()
    const cached = this.routeOptions.get(handler)
    if (cached !== undefined) return cached
    const onHandler = levelOf(this.reflector, handler)
    const onClass = levelOf(this.reflector, context.getClass())
    const resolved = this.resolve(onHandler, onClass)
    this.routeOptions.set(handler, resolved)
    return resolved
  }

  private resolve(onHandler: Level, onClass: Level): RouteOptions | typeof ANONYMOUS {
    const protectedHere = onHandler.access !== undefined || onClass.access !== undefined
    if (!protectedHere && !this.global) return ANONYMOUS
    if (onHandler.anonymous ?? onClass.anonymous ?? false) return ANONYMOUS
    const hooks = [
      this.options.authorize,
      onClass.access?.authorize,
      onHandler.access?.authorize,
    ].filter((hook): hook is NestAuthorize => hook !== undefined)
    const { authorize: _c, credentialsRequired: _cr, ...classRest } = onClass.access ?? {}
    const { authorize: _h, credentialsRequired: _hr, ...handlerRest } = onHandler.access ?? {}
    const options: RouteOptions = {
      ...classRest,
      ...handlerRest,
      credentialsRequired: onHandler.credentialsRequired ?? onClass.credentialsRequired ?? true,
      // Attached by `canActivate` once `handleRequest` has accepted it.
      attach: false,
    }
    if (hooks.length > 0) {
      options.authorize = async (principal, ctx) => {
        for (const hook of hooks) if (!(await hook(principal, ctx))) return false
        return true
      }
    }
    return options
  }

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const options = this.optionsFor(context)
    if (options === ANONYMOUS) return true
    const request = this.getRequest(context)

    const raw = nodeRequestOf(request)
    const ctx: RequestContext = {
      ip: this.options.clientIp?.(request) ?? request.ip ?? raw.socket?.remoteAddress,
      path: requestPath(request),
    }
    const target = {
      req: raw,
      parsed: request as ParsedBody,
      source: context,
      key: request,
      holder: request,
      setBody: (body: unknown) => void (request.body = body),
      context: ctx,
      // The request target as received (Fastify's `url` and Express's `originalUrl` keep it).
      url: request.originalUrl ?? request.url ?? raw.url ?? '/',
    }
    let principal: AccessPrincipal<unknown, unknown> | undefined
    let error: unknown
    try {
      const result = await nodeAccess(this.auth, target, options, RAW_BODY_ADVICE)
      // Verified already (the guard applied twice): only this route's authorization remained.
      if (result.earlier) return true
      principal = result.principal
    } catch (caught) {
      error = caught ?? new InternalError()
    }
    const accepted = this.handleRequest(error, principal, context)
    if (accepted !== undefined) {
      // In the header form the handler keeps the body the app's parser produced.
      const headerForm = accepted.requestSignature !== undefined
      attachPrincipal(
        target,
        accepted,
        headerForm ? { ...this.options, replaceBody: false } : this.options
      )
      arrangeSignedReply(this.auth, context, accepted)
    }
    return true
  }
}

type RouteOptions = NodeAccessOptions<unknown, unknown, ExecutionContext>

/** A route the guard lets through unchecked. */
const ANONYMOUS = Symbol('anonymous')

/**
 * What one level (a handler, or its controller) says, as fields that are `undefined` where the
 * level says nothing, so a handler's setting overrides its controller's field by field:
 *
 * - `anonymous`: `true` with `@AllowAnonymous()`; `false` with `@BetterAuthAccess()` or
 *   `@OptionalAccess()` (the level asks for an access check, which beats an anonymous controller);
 *   both on one level contradict each other, and the check wins (fail closed).
 * - `credentialsRequired`: `@BetterAuthAccess({ credentialsRequired })` when given; else `false`
 *   with `@OptionalAccess()`.
 */
interface Level {
  access: AccessMetadata | undefined
  anonymous: boolean | undefined
  credentialsRequired: boolean | undefined
}

function levelOf(reflector: Reflector, target: object): Level {
  const access = reflector.get<AccessMetadata | undefined>(ACCESS_METADATA, target as never)
  const allow = reflector.get<boolean | undefined>(ALLOW_ANONYMOUS, target as never) === true
  const optional = reflector.get<boolean | undefined>(OPTIONAL_ACCESS, target as never) === true
  const checked = access !== undefined || optional
  return {
    access,
    anonymous: checked ? false : allow ? true : undefined,
    credentialsRequired: access?.credentialsRequired ?? (optional ? false : undefined),
  }
}

/** The guard registered as `APP_GUARD` in global-guard mode. */
@Injectable()
export class BetterAuthGlobalGuard extends BetterAuthGuard {
  protected override readonly global: boolean = true
}
