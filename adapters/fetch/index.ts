/**
 * Web-standard adapter: `better-auth-protocol/fetch`. Everything is `Request → Response`, so it
 * serves Hono, Next.js route handlers, Bun, Deno and node:http (through `Request`).
 *
 *   const auth = betterAuth({ attributes: … }, { prefix: '/auth' })
 *   auth.fetch(request)                                  // the protocol endpoints
 *   export const POST = auth.requireAccess(({ principal }) => ({ hello: principal.identity }))
 */
import {
  BetterAuthError,
  InvalidMessageError,
  MethodNotAllowedError,
  NotFoundError,
  PayloadTooLargeError,
  toBetterAuthError,
} from '../../src/errors'
import {
  type AccessPrincipal,
  type BetterAuthOptions,
  type BetterAuthServer,
  type HandlerResult,
  type RequestContext,
} from '../../src/server/core'

import { AdapterBase, ProtocolRoutes, coreOf, type MountOptions } from '../shared/routes'
import { checkAccess, normalizePath, type AccessOptions } from '../shared/access'
import { DEFAULT_BODY_LIMIT } from '../shared/node'

export type { Authorize, AccessOptions } from '../shared/access'

export type FetchOptions = MountOptions

/** Options of an access check on a `Request`. */
export type FetchAccessOptions<Attributes = unknown, Body = unknown> = AccessOptions<
  Attributes,
  Body,
  Request
>

/** The outcome of `checkAccess`. */
export type AccessCheck<Attributes = unknown, Body = unknown> =
  | {
      ok: true
      /** The verified caller; `undefined` only with `credentialsRequired: false` and no credentials. */
      principal: AccessPrincipal<Attributes, Body> | undefined
      /** The request body as read (the `Request` itself can no longer be read). */
      body: Uint8Array
      /**
       * The reply: a signed response envelope echoing the request nonce (plain JSON for an
       * anonymous caller), status 200 unless `init` says otherwise.
       */
      respond(data: unknown, init?: ResponseInit): Promise<Response>
    }
  | {
      ok: false
      /** The protocol error answer (401 with `WWW-Authenticate`, 403, 400, 422 …). */
      response: Response
      error: BetterAuthError
    }

/** What a protected handler gets. */
export interface AccessContext<Attributes, Body, Principal = AccessPrincipal<Attributes, Body>> {
  principal: Principal
  /** The verified request data (`payload.request`); `undefined` for an anonymous caller. */
  data: Body
  /** The request body as read (for an anonymous caller's own data; not verified). */
  body: Uint8Array
  request: Request
}

/** A protected handler: returns the reply data (signed for it), or a `Response` sent as it is. */
export type AccessHandler<Attributes, Body, Principal = AccessPrincipal<Attributes, Body>> = (
  context: AccessContext<Attributes, Body, Principal>
) => unknown

const JSON_TYPE = 'application/json; charset=utf-8'

function toResponse(result: HandlerResult, init: ResponseInit = {}): Response {
  const headers = new Headers(result.headers)
  new Headers(init.headers).forEach((value, name) => headers.set(name, value))
  return new Response(result.body, { status: init.status ?? result.status, headers })
}

/** Reads a request body, refusing more than `limit` bytes (declared or actual) early. */
export async function readRequestBody(request: Request, limit: number): Promise<Uint8Array> {
  const declared = Number(request.headers.get('content-length'))
  if (Number.isFinite(declared) && declared > limit) throw new PayloadTooLargeError(limit)
  if (request.body === null) return new Uint8Array(0)
  const reader = request.body.getReader()
  const chunks: Uint8Array[] = []
  let size = 0
  for (;;) {
    let chunk: ReadableStreamReadResult<Uint8Array>
    try {
      chunk = await reader.read()
    } catch (cause) {
      throw new InvalidMessageError('body', 'the connection closed before it was complete', {
        cause,
      })
    }
    const { done, value } = chunk
    if (done) break
    size += value.byteLength
    if (size > limit) {
      await reader.cancel().catch(() => undefined)
      throw new PayloadTooLargeError(limit)
    }
    chunks.push(value)
  }
  if (chunks.length === 1) return chunks[0] as Uint8Array
  const body = new Uint8Array(size)
  let offset = 0
  for (const chunk of chunks) {
    body.set(chunk, offset)
    offset += chunk.byteLength
  }
  return body
}

/** The core with Web-standard `Request → Response` entry points. */
export class FetchBetterAuth<Attributes = unknown> extends AdapterBase<Attributes> {
  private readonly routes: ProtocolRoutes
  private readonly limit: number

  constructor(core: BetterAuthServer<Attributes>, options: FetchOptions = {}) {
    super(core)
    this.routes = new ProtocolRoutes(core as BetterAuthServer<unknown>, options)
    this.limit = core.limits.maxBodyBytes ?? DEFAULT_BODY_LIMIT
  }

  /** Whether `request` is for a protocol endpoint (or the OpenAPI document). */
  matches(request: Request): boolean {
    return this.routes.has(new URL(request.url).pathname)
  }

  /**
   * Answers the protocol endpoints; any other path gets 404 (BA604), a wrong method 405 (BA605)
   * with `Allow`. `context.ip` is the client IP, when the runtime knows it (rate limiting).
   * An arrow function, so it can be passed on as it is (`export default { fetch: auth.fetch }`).
   */
  readonly fetch = async (request: Request, context: RequestContext = {}): Promise<Response> => {
    const path = normalizePath(new URL(request.url).pathname)
    const ctx: RequestContext = { path, ...context }
    const match = this.routes.match(path, request.method)
    if (match === undefined) {
      return toResponse(this.core.errorResult(new NotFoundError(), { ...ctx }))
    }
    if (match.kind === 'openapi') {
      return new Response(match.document, { headers: { 'content-type': JSON_TYPE } })
    }
    if (match.kind === 'method') {
      return toResponse(this.core.errorResult(new MethodNotAllowedError(), { ...ctx }), {
        headers: { allow: match.route.methods.join(', ') },
      })
    }
    let body: Uint8Array
    try {
      body = await readRequestBody(request, this.limit)
    } catch (error) {
      return toResponse(this.core.errorResult(error, { endpoint: match.route.endpoint, ...ctx }))
    }
    return toResponse(await this.core.handle(match.route.endpoint, body, ctx))
  }

  /**
   * Verifies the access request in `request` (its body is read) and runs `authorize`. On success
   * gives the principal and `respond(data)`, which builds the signed reply; on failure, the error
   * answer to return as it is.
   */
  async checkAccess<Body = unknown>(
    request: Request,
    options: FetchAccessOptions<Attributes, Body> = {},
    context: RequestContext = {}
  ): Promise<AccessCheck<Attributes, Body>> {
    const ctx: RequestContext = { path: new URL(request.url).pathname, ...context }
    let principal: AccessPrincipal<Attributes, Body> | undefined
    let body: Uint8Array
    try {
      body = await readRequestBody(request, this.limit)
      principal = await checkAccess<Attributes, Body, Request>(
        this.core,
        body,
        ctx,
        request,
        options
      )
    } catch (error) {
      const result = this.core.errorResult(error, { route: ctx.path, ip: ctx.ip })
      return {
        ok: false,
        response: toResponse(result),
        error: toBetterAuthError(error),
      }
    }
    const nonce = principal?.nonce
    return {
      ok: true,
      principal,
      body,
      respond: async (data: unknown, init: ResponseInit = {}) => {
        const text =
          nonce === undefined ? JSON.stringify(data ?? null) : await this.core.respond(nonce, data)
        return toResponse({ status: 200, headers: { 'content-type': JSON_TYPE }, body: text }, init)
      },
    }
  }

  /**
   * A protected handler: `(request) => Response`. The handler returns the reply data, which is
   * sent as a signed response envelope, or a `Response`, sent as it is; a `BetterAuthError` it
   * throws becomes its error answer.
   */
  requireAccess<Body = unknown>(
    handler: AccessHandler<Attributes, Body>,
    options?: FetchAccessOptions<Attributes, Body> & { credentialsRequired?: true }
  ): (request: Request, context?: RequestContext) => Promise<Response>
  requireAccess<Body = unknown>(
    handler: AccessHandler<
      Attributes,
      Body | undefined,
      AccessPrincipal<Attributes, Body> | undefined
    >,
    options: FetchAccessOptions<Attributes, Body> & { credentialsRequired: false }
  ): (request: Request, context?: RequestContext) => Promise<Response>
  requireAccess<Body = unknown>(
    handler: AccessHandler<Attributes, Body, never>,
    options: FetchAccessOptions<Attributes, Body> = {}
  ): (request: Request, context?: RequestContext) => Promise<Response> {
    return async (request: Request, context: RequestContext = {}) => {
      const check = await this.checkAccess<Body>(request, options, context)
      if (!check.ok) return check.response
      try {
        const data = await handler({
          principal: check.principal as never,
          data: check.principal?.request as Body,
          body: check.body,
          request,
        })
        return data instanceof Response ? data : await check.respond(data)
      } catch (error) {
        if (!(error instanceof BetterAuthError)) throw error
        return toResponse(this.core.errorResult(error, { route: new URL(request.url).pathname }))
      }
    }
  }
}

/**
 * Better Auth as `Request → Response` handlers: from core options (a new core), or around an
 * existing core (one core can serve Express and a fetch handler at once).
 */
export function betterAuth<Attributes = unknown>(
  coreOrOptions: BetterAuthServer<Attributes> | BetterAuthOptions<Attributes> = {},
  options: FetchOptions = {}
): FetchBetterAuth<Attributes> {
  return new FetchBetterAuth(coreOf(coreOrOptions), options)
}
