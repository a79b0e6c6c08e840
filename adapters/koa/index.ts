/**
 * Koa adapter (Koa 2 and 3): `better-auth-protocol/koa`.
 *
 *   const auth = betterAuth({ attributes: … })
 *   app.use(auth.koa())                                   // the protocol endpoints
 *   router.post('/notes', auth.requireAccess(), handler)  // any route, protected
 *
 * The principal goes on `ctx.state.betterAuth` (configurable key); whatever JSON the handler puts
 * in `ctx.body` is sent as a signed response envelope echoing the request nonce. Koa itself is not
 * imported at run time.
 */
import type { Context, Middleware, Next, ParameterizedContext } from 'koa'
import { BetterAuthError, ForbiddenError, NotFoundError } from '../../src/errors'
import { protocolErrorForStatus } from '../shared/http'
import { healthRoutes, type HealthOptions } from '../../src/server/health'
import {
  type AccessPrincipal,
  type BetterAuthOptions,
  type BetterAuthServer,
  type RequestContext,
} from '../../src/server/core'

import { AdapterBase, ProtocolRoutes, coreOf, type MountOptions } from '../shared/routes'
import { checkAccess, failure, principals, type AccessOptions } from '../shared/access'
import {
  DEFAULT_BODY_LIMIT,
  closeAfterOverlongBody,
  nodeRawBody,
  parsedForHandler,
  warnReserialized,
  type ParsedBody,
} from '../shared/node'

export { UnauthorizedError, type Authorize, type AccessOptions } from '../shared/access'
export { handleClientErrors, protocolErrorForStatus } from '../shared/http'

const ADVICE =
  'Mount auth.koa() / requireAccess() before the body parser, or use a parser that keeps ' +
  'ctx.request.rawBody (koa-bodyparser, @koa/bodyparser).'

/** Options of the protocol endpoints middleware. */
export interface KoaMountOptions extends MountOptions {
  /** The client IP given to the core. @default `ctx.ip`, which honours `app.proxy` */
  clientIp?: (ctx: Context) => string | undefined
}

/** Options of `requireAccess`. */
export interface KoaRequireAccessOptions<
  Attributes = unknown,
  Body = unknown,
  Key extends string = 'betterAuth',
> extends AccessOptions<Attributes, Body, Context> {
  /** Where the principal is put: `ctx.state[key]`. @default 'betterAuth' */
  key?: Key
  /** Set `ctx.request.body` to the verified request data (`payload.request`). @default true */
  replaceBody?: boolean
  /**
   * Throw failures as an {@link UnauthorizedError} (status, code, `expose`, headers) for the app's
   * error middleware or Koa's default handler, instead of answering them. @default false
   */
  failWithError?: boolean
  /** The client IP given to the core. @default `ctx.ip` */
  clientIp?: (ctx: Context) => string | undefined
}

/** The state `requireAccess` adds: `ctx.state[Key]`. */
export type BetterAuthState<
  Attributes = unknown,
  Body = unknown,
  Key extends string = 'betterAuth',
> = {
  [P in Key]: AccessPrincipal<Attributes, Body>
}

type AnyContext = ParameterizedContext<unknown>

const parsedOf = (ctx: AnyContext): ParsedBody => {
  const request = ctx.request as { rawBody?: unknown; body?: unknown }
  return { rawBody: request.rawBody, body: request.body }
}

function answer(
  ctx: AnyContext,
  result: { status: number; headers: Record<string, string>; body: string }
): void {
  ctx.status = result.status
  ctx.body = result.body
  ctx.set(result.headers)
}

/** Whether Koa would send this body as JSON (not text, bytes, a stream or nothing). */
function isJsonBody(body: unknown): boolean {
  if (body === undefined || body === null || typeof body !== 'object') return false
  if (Buffer.isBuffer(body) || ArrayBuffer.isView(body) || body instanceof ArrayBuffer) return false
  if (typeof (body as { pipe?: unknown }).pipe === 'function') return false
  if (typeof ReadableStream !== 'undefined' && body instanceof ReadableStream) return false
  if (typeof Blob !== 'undefined' && body instanceof Blob) return false
  if (typeof Response !== 'undefined' && body instanceof Response) return false
  return true
}

/** Middleware answering the protocol endpoints; every other request goes to `next()`. */
export function protocolMiddleware(
  auth: BetterAuthServer<unknown>,
  options: KoaMountOptions = {}
): Middleware {
  const routes = new ProtocolRoutes(auth, options)
  const limit = auth.limits.maxBodyBytes ?? DEFAULT_BODY_LIMIT
  const clientIp = options.clientIp ?? ((ctx: Context) => ctx.ip)

  // A protocol path asked with another method goes on to the app, like any unmatched route.
  return async (ctx: Context, next: Next) => {
    const match = routes.match(ctx.path, ctx.method)
    if (match?.kind === 'openapi') {
      ctx.type = 'application/json'
      ctx.body = match.document
      return
    }
    if (match?.kind !== 'endpoint') {
      await next()
      return
    }
    const route = match.route
    const context: RequestContext = { ip: clientIp(ctx), path: ctx.path }
    let result
    try {
      const { body, source } = await nodeRawBody(ctx.req, parsedOf(ctx), limit)
      if (source === 'reserialized') warnReserialized(auth, ADVICE)
      result = await auth.handle(route.endpoint, body, context)
    } catch (error) {
      closeAfterOverlongBody(error, (name, value) => ctx.set(name, value))
      result = auth.errorResult(error, { endpoint: route.endpoint, ...context })
    }
    answer(ctx, result)
  }
}

/**
 * Protects a route: verifies the access request, runs `authorize`, puts the principal on
 * `ctx.state[key]` and the verified request data on `ctx.request.body`, and after the handler
 * signs a JSON `ctx.body` (status below 400) into a response envelope echoing the request nonce.
 * Failures are answered with the protocol error body and status (401 with `WWW-Authenticate`;
 * details only in debug), or thrown with `failWithError`.
 */
export function requireAccess<
  Attributes = unknown,
  Body = unknown,
  Key extends string = 'betterAuth',
>(
  auth: BetterAuthServer<Attributes>,
  options: KoaRequireAccessOptions<Attributes, Body, Key> = {}
): Middleware<BetterAuthState<Attributes, Body, Key>> {
  const key = options.key ?? 'betterAuth'
  const replaceBody = options.replaceBody ?? true
  const limit = auth.limits.maxBodyBytes ?? DEFAULT_BODY_LIMIT
  const clientIp = options.clientIp ?? ((ctx: Context) => ctx.ip)
  const core = auth as BetterAuthServer<unknown>

  return async (ctx, next) => {
    const context: RequestContext = { ip: clientIp(ctx as Context), path: ctx.path }
    const previous = principals.get(ctx) as AccessPrincipal<Attributes, Body> | undefined
    let principal: AccessPrincipal<Attributes, Body> | undefined
    try {
      if (previous !== undefined) {
        // Already verified by an earlier requireAccess on this request: only authorize again.
        if (
          options.authorize !== undefined &&
          !(await options.authorize(previous, ctx as Context))
        ) {
          throw new ForbiddenError()
        }
      } else {
        const { body, source } = await nodeRawBody(ctx.req, parsedOf(ctx), limit)
        if (source === 'reserialized') warnReserialized(core, ADVICE)
        principal = await checkAccess<Attributes, Body, Context>(
          auth,
          body,
          context,
          ctx as Context,
          options
        )
        if (principal === undefined && source === 'stream') {
          ;(ctx.request as { body?: unknown }).body = parsedForHandler(body)
        }
      }
    } catch (error) {
      if (options.failWithError === true && !(error instanceof BetterAuthError)) throw error
      closeAfterOverlongBody(error, (name, value) => ctx.set(name, value))
      const result = failure(core, error, { route: context.path, ip: context.ip })
      if (options.failWithError === true) throw result.error
      answer(ctx, result)
      return
    }
    // Anonymous (optional access), or signed already by the outer requireAccess.
    if (principal === undefined) {
      await next()
      return
    }
    principals.set(ctx, principal)
    ;(ctx.state as Record<string, unknown>)[key] = principal
    if (replaceBody) (ctx.request as { body?: unknown }).body = principal.request
    await next()
    if (ctx.status < 400 && isJsonBody(ctx.body)) {
      ctx.body = await core.respond(principal.nonce, ctx.body)
      ctx.type = 'application/json'
    }
  }
}

/** The principal `requireAccess` put on this context, or `undefined`. */
export function getPrincipal<Attributes = unknown, Body = unknown>(
  ctx: object
): AccessPrincipal<Attributes, Body> | undefined {
  return principals.get(ctx) as AccessPrincipal<Attributes, Body> | undefined
}

/**
 * The first middleware of an app: answers what the app or its middlewares throw — a router's
 * 405/501 (`allowedMethods({ throw: true })`), a body parser's 400/413/415, any `http-errors`
 * error, a BetterAuthError — and every request no route answered (404) with the protocol's error
 * body and the matching status and code, never Koa's plain-text pages. Other errors become 500
 * BA600 and are logged by the core (when given), with no detail sent.
 */
export function protocolErrors(core?: BetterAuthServer<unknown>): Middleware {
  return async (ctx: Context, next: Next) => {
    try {
      await next()
    } catch (error) {
      const mapped = protocolErrorForStatus(error)
      closeAfterOverlongBody(mapped, (name, value) => ctx.set(name, value))
      answer(ctx, core?.errorResult(mapped, { route: ctx.path }) ?? plainResult(mapped))
      return
    }
    if (ctx.status === 404 && (ctx.body === undefined || ctx.body === null))
      answer(ctx, plainResult(new NotFoundError()))
  }
}

/** The wire answer of an error, without a core to log it. */
function plainResult(error: BetterAuthError) {
  return {
    status: error.status,
    headers: { 'content-type': 'application/json; charset=utf-8' },
    body: JSON.stringify(error.toBody(false)),
  }
}

/** The core wrapped with Koa middleware factories. */
export class KoaBetterAuth<Attributes = unknown> extends AdapterBase<Attributes> {
  /** Middleware answering the protocol endpoints (see {@link KoaMountOptions}). */
  koa(options: KoaMountOptions = {}): Middleware {
    return protocolMiddleware(this.core as BetterAuthServer<unknown>, options)
  }

  /** First middleware of an app: protocol error bodies for every failure (see {@link protocolErrors}). */
  errorHandler(): Middleware {
    return protocolErrors(this.core as BetterAuthServer<unknown>)
  }

  /**
   * Liveness and readiness (`GET /healthz`, `GET /readyz`; see `healthRoutes`), opt-in:
   * `app.use(auth.health())`. Other requests go on.
   */
  health(options: HealthOptions = {}): Middleware {
    const routes = healthRoutes(this.core, { logger: this.core.logger, ...options })
    return async (ctx: Context, next: Next) => {
      const answer = routes.answer(ctx.method, ctx.path)
      if (answer === undefined) {
        await next()
        return
      }
      const result = await answer
      ctx.status = result.status
      ctx.set(result.headers)
      ctx.body = result.body
    }
  }

  /** Middleware protecting a route (see {@link requireAccess}). */
  requireAccess<Body = unknown, Key extends string = 'betterAuth'>(
    options: KoaRequireAccessOptions<Attributes, Body, Key> = {}
  ): Middleware<BetterAuthState<Attributes, Body, Key>> {
    return requireAccess<Attributes, Body, Key>(this.core, options)
  }
}

/** Better Auth for Koa: from core options (a new core), or around an existing core. */
export function betterAuth<Attributes = unknown>(
  coreOrOptions: BetterAuthServer<Attributes> | BetterAuthOptions<Attributes> = {}
): KoaBetterAuth<Attributes> {
  return new KoaBetterAuth(coreOf(coreOrOptions))
}
