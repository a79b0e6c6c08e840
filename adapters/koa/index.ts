/**
 * Koa adapter (Koa 2 and 3): `better-auth-protocol/koa`.
 *
 *   const auth = betterAuth({ attributes: … })
 *   app.use(auth.koa())                                   // the protocol endpoints
 *   router.post('/notes', auth.requireAccess(), handler)  // any route, protected
 *
 * The principal goes on `ctx.state.betterAuth` (see `requestProperty`); whatever JSON the handler puts
 * in `ctx.body` is sent as a signed response envelope echoing the request nonce. Koa itself is not
 * imported at run time.
 */
import type { Context, Middleware, Next, ParameterizedContext } from 'koa'
import { NotFoundError } from '../../src/errors'
import { decodingRefusal, protocolErrorForStatus } from '../shared/http'
import { koaView, withUnless, type WithUnless } from '../shared/unless'
import { healthRoutes, type HealthOptions } from '../../src/server/health'
import {
  type AccessPrincipal,
  type BetterAuthOptions,
  type BetterAuthServer,
  type RequestContext,
} from '../../src/server/core'

import { AdapterBase, ProtocolRoutes, coreOf, type MountOptions } from '../shared/routes'
import { accessFailure, type AccessOptions } from '../shared/access'
import { plainErrorResult, type AdapterCore } from '../shared/core'
import {
  answerEndpoint,
  closeAfterOverlongBody,
  getPrincipal as principalOf,
  nodeAccess,
  type ParsedBody,
} from '../shared/node'

export {
  BetterAuthHttpError,
  UnauthorizedError,
  type Authorize,
  type AccessOptions,
} from '../shared/access'
export type { AdapterCore } from '../shared/core'
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
  /** Where the principal is put: `ctx.state[requestProperty]`. @default 'betterAuth' */
  requestProperty?: Key
  /** @deprecated Use `requestProperty` (the name every adapter uses). */
  key?: Key
  /** Set `ctx.request.body` to the verified request data (`payload.request`). @default true */
  replaceBody?: boolean
  /**
   * Throw failures as a {@link BetterAuthHttpError} (status, code, `expose`, headers) for the app's
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

/**
 * The state `requireAccess({ credentialsRequired: false })` adds: `ctx.state[Key]`, absent for a
 * caller without credentials.
 */
export type OptionalBetterAuthState<
  Attributes = unknown,
  Body = unknown,
  Key extends string = 'betterAuth',
> = {
  [P in Key]?: AccessPrincipal<Attributes, Body>
}

/**
 * The state `requireAccess<Body>({ requestProperty })` adds when the property name is not known to
 * the compiler (TypeScript infers no type argument once one is given): any key may hold the
 * principal, and each may be absent. Merged with Koa's default state (`any`), as a router does,
 * that leaves `ctx.state.me` untyped; `requireAccess<Body, 'me'>(…)` types it exactly.
 */
export type AnyKeyBetterAuthState<Attributes = unknown, Body = unknown> = {
  [key: string]: AccessPrincipal<Attributes, Body> | undefined
}

type AnyContext = ParameterizedContext<unknown>

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

/** The bytes Koa would send for `ctx.body` (a stream is read whole). */
async function bodyBytes(body: unknown): Promise<Buffer> {
  if (body === undefined || body === null) return Buffer.alloc(0)
  if (typeof body === 'string') return Buffer.from(body)
  if (Buffer.isBuffer(body)) return body
  if (ArrayBuffer.isView(body)) return Buffer.from(body.buffer, body.byteOffset, body.byteLength)
  if (body instanceof ArrayBuffer) return Buffer.from(body)
  if (typeof (body as { pipe?: unknown }).pipe === 'function') {
    const chunks: Buffer[] = []
    for await (const chunk of body as AsyncIterable<Buffer | string>) {
      chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk)
    }
    return Buffer.concat(chunks)
  }
  if (typeof Blob !== 'undefined' && body instanceof Blob) {
    return Buffer.from(await body.arrayBuffer())
  }
  return Buffer.from(JSON.stringify(body))
}

/**
 * Signs a header-form reply as the handler left it (any status below 400, any body): the body
 * is turned into the bytes Koa sends, and the response-signature headers are added (over no
 * body in answer to HEAD, which gets none).
 */
async function signKoaReply(
  auth: Pick<AdapterCore, 'signHeaderResponse'>,
  ctx: AnyContext,
  requestSignature: Uint8Array
): Promise<void> {
  const type = ctx.response.get('Content-Type')
  const status = ctx.status
  const bytes = await bodyBytes(ctx.body)
  if (ctx.body !== undefined && ctx.body !== null) {
    ctx.body = bytes
    if (type !== '') ctx.set('Content-Type', type)
    ctx.status = status
  }
  // Koa sends no body in answer to HEAD: the signature covers none.
  const sent = ctx.method === 'HEAD' ? new Uint8Array(0) : bytes
  const headers = await auth.signHeaderResponse({
    status,
    body: new Uint8Array(sent.buffer, sent.byteOffset, sent.length),
    requestSignature,
  })
  ctx.set(headers)
}

/** Middleware answering the protocol endpoints; every other request goes to `next()`. */
export function protocolMiddleware(auth: AdapterCore, options: KoaMountOptions = {}): Middleware {
  const routes = new ProtocolRoutes(auth, options)
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
    const context: RequestContext = { ip: clientIp(ctx), path: ctx.path }
    const { rawBody, body } = ctx.request as ParsedBody
    answer(
      ctx,
      await answerEndpoint(auth, match.route.endpoint, ctx.req, { rawBody, body }, context, {
        advice: ADVICE,
        setHeader: (name, value) => ctx.set(name, value),
      })
    )
  }
}

/**
 * Protects a route: verifies the access request in either form (`binding`; in the header form
 * `ctx.request.body` stays as parsed and the reply, whatever its type, gets the
 * response-signature headers), runs `authorize`, puts the principal on
 * `ctx.state[requestProperty]` and the verified request data on `ctx.request.body`, and after the handler
 * signs a JSON `ctx.body` (status below 400) into a response envelope echoing the request nonce.
 * Failures are answered with the protocol error body and status (401 with `WWW-Authenticate`;
 * details only in debug), or thrown with `failWithError`.
 */
export function requireAccess<
  Attributes = unknown,
  Body = unknown,
  Key extends string = 'betterAuth',
>(
  auth: AdapterCore<Attributes>,
  options?: KoaRequireAccessOptions<Attributes, Body, Key> & { credentialsRequired?: true }
): Middleware<BetterAuthState<Attributes, Body, Key>>
export function requireAccess<
  Attributes = unknown,
  Body = unknown,
  Key extends string = 'betterAuth',
>(
  auth: AdapterCore<Attributes>,
  options: KoaRequireAccessOptions<Attributes, Body, Key> & { credentialsRequired: boolean }
): Middleware<OptionalBetterAuthState<Attributes, Body, Key>>
export function requireAccess<Attributes = unknown, Body = unknown>(
  auth: AdapterCore<Attributes>,
  options: KoaRequireAccessOptions<Attributes, Body, string>
): Middleware<AnyKeyBetterAuthState<Attributes, Body>>
export function requireAccess<Attributes = unknown, Body = unknown>(
  auth: AdapterCore<Attributes>,
  options: KoaRequireAccessOptions<Attributes, Body, string> = {}
): Middleware<AnyKeyBetterAuthState<Attributes, Body>> {
  const clientIp = options.clientIp ?? ((ctx: Context) => ctx.ip)
  const access = { ...options, requestProperty: options.requestProperty ?? options.key }

  return async (ctx, next) => {
    const context: RequestContext = { ip: clientIp(ctx as Context), path: ctx.path }
    const request = ctx.request as ParsedBody
    let result
    try {
      const target = {
        req: ctx.req,
        parsed: { rawBody: request.rawBody, body: request.body },
        source: ctx as Context,
        key: ctx,
        holder: ctx.state as object,
        setBody: (body: unknown) => void (request.body = body),
        context,
        url: ctx.originalUrl,
      }
      result = await nodeAccess<Attributes, Body, Context>(auth, target, access, ADVICE)
    } catch (error) {
      const outcome = accessFailure(auth, error, {
        failWithError: options.failWithError,
        context,
        setHeader: (name, value) => ctx.set(name, value),
      })
      if (outcome.kind === 'pass' || options.failWithError === true) throw outcome.error
      answer(ctx, outcome.result)
      return
    }
    // Anonymous (optional access), or signed already by the outer requireAccess.
    if (result.principal === undefined || result.earlier) {
      await next()
      return
    }
    const nonce = result.principal.nonce
    const requestSignature = result.principal.requestSignature
    await next()
    if (requestSignature !== undefined) {
      if (ctx.status < 400) await signKoaReply(auth, ctx, requestSignature)
      return
    }
    if (ctx.status < 400 && isJsonBody(ctx.body)) {
      ctx.body = await auth.respond(nonce, ctx.body)
      ctx.type = 'application/json'
    }
  }
}

/** The principal `requireAccess` put on this context, or `undefined`. */
export function getPrincipal<Attributes = unknown, Body = unknown>(
  ctx: object
): AccessPrincipal<Attributes, Body> | undefined {
  return principalOf<Attributes, Body>(ctx)
}

/**
 * The first middleware of an app: answers what the app or its middlewares throw — a router's
 * 405/501 (`allowedMethods({ throw: true })`), a body parser's 400/413/415, any `http-errors`
 * error, a BetterAuthError — and every request no route answered (404) with the protocol's error
 * body and the matching status and code, never Koa's plain-text pages. Other errors become 500
 * BA600 and are logged by the core (when given), with no detail sent.
 */
export function protocolErrors(core?: Pick<AdapterCore, 'errorResult'>): Middleware {
  return async (ctx: Context, next: Next) => {
    try {
      await next()
    } catch (error) {
      const mapped = decodingRefusal(error, ctx.req.headers) ?? protocolErrorForStatus(error)
      closeAfterOverlongBody(mapped, (name, value) => ctx.set(name, value))
      answer(ctx, core?.errorResult(mapped, { route: ctx.path }) ?? plainErrorResult(mapped))
      return
    }
    if (ctx.status === 404 && (ctx.body === undefined || ctx.body === null))
      answer(ctx, plainErrorResult(new NotFoundError()))
  }
}

/** The core wrapped with Koa middleware factories. */
export class KoaBetterAuth<Attributes = unknown> extends AdapterBase<Attributes> {
  /** Middleware answering the protocol endpoints (see {@link KoaMountOptions}). */
  koa(options: KoaMountOptions = {}): Middleware {
    return protocolMiddleware(this.core, options)
  }

  /** First middleware of an app: protocol error bodies for every failure (see {@link protocolErrors}). */
  errorHandler(): Middleware {
    return protocolErrors(this.core)
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

  /**
   * Middleware protecting a route (see {@link requireAccess}). The principal is typed on
   * `ctx.state[requestProperty]` (the name inferred from the option); with `credentialsRequired:
   * false` (or a `boolean`) it is typed as possibly absent (`ctx.state.betterAuth?.identity`).
   * With a body type argument and a custom name, `requireAccess<Body>({ requestProperty: 'me' })`,
   * the name cannot be inferred (see {@link AnyKeyBetterAuthState});
   * `requireAccess<Body, 'me'>(…)` types `ctx.state.me` exactly.
   */
  requireAccess<Body = unknown, Key extends string = 'betterAuth'>(
    options?: KoaRequireAccessOptions<Attributes, Body, Key> & { credentialsRequired?: true }
  ): WithUnless<Middleware<BetterAuthState<Attributes, Body, Key>>, Context>
  requireAccess<Body = unknown, Key extends string = 'betterAuth'>(
    options: KoaRequireAccessOptions<Attributes, Body, Key> & { credentialsRequired: boolean }
  ): WithUnless<Middleware<OptionalBetterAuthState<Attributes, Body, Key>>, Context>
  requireAccess<Body = unknown>(
    options: KoaRequireAccessOptions<Attributes, Body, string>
  ): WithUnless<Middleware<AnyKeyBetterAuthState<Attributes, Body>>, Context>
  requireAccess<Body = unknown>(
    options: KoaRequireAccessOptions<Attributes, Body, string> = {}
  ): WithUnless<Middleware<AnyKeyBetterAuthState<Attributes, Body>>, Context> {
    return withUnless(requireAccess<Attributes, Body>(this.core, options), koaView)
  }
}

/** Better Auth for Koa: from core options (a new core), or around an existing core. */
export function betterAuth<Attributes = unknown>(
  coreOrOptions: BetterAuthServer<Attributes> | BetterAuthOptions<Attributes> = {}
): KoaBetterAuth<Attributes> {
  return new KoaBetterAuth(coreOf(coreOrOptions))
}
