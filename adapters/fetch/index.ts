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

import type { IncomingMessage, ServerResponse } from 'node:http'
import { AdapterBase, ProtocolRoutes, coreOf, type MountOptions } from '../shared/routes'
import {
  checkAccess,
  normalizePath,
  principals,
  settleAccess,
  type AccessOptions,
} from '../shared/access'
import {
  DEFAULT_BODY_LIMIT,
  JSON_CONTENT_TYPE,
  bodyLimit,
  plainErrorResult,
  successStatus,
  type AdapterCore,
} from '../shared/core'
import { readBody } from '../shared/body'
import { usesHeaderForm } from '../shared/binding'
import { handleClientErrors } from '../shared/http'
import { healthRoutes, type HealthOptions } from '../../src/server/health'
import { adminHttp, type AdminHttpOptions } from '../../src/server/admin-http'
import { clientIp as forwardedClientIp, type TrustProxy } from '../shared/ip'

export { BetterAuthHttpError } from '../shared/access'
export type { Authorize, AccessOptions } from '../shared/access'
export { handleClientErrors, type TrustProxy }

export type { AdapterCore } from '../shared/core'

export interface FetchOptions extends MountOptions {
  /**
   * The client IP of a request when the caller passes no `context.ip` (a `Request` does not
   * carry it; see {@link FetchBetterAuth.fetch} for where runtimes keep it). @default none
   */
  clientIp?: (request: Request) => string | undefined
}

/** Options of an access check on a `Request`. */
export type FetchAccessOptions<Attributes = unknown, Body = unknown> = AccessOptions<
  Attributes,
  Body,
  Request
>

/** Options of `requireAccess`: those of the check, and the status of its replies. */
export type FetchRequireAccessOptions<Attributes = unknown, Body = unknown> = FetchAccessOptions<
  Attributes,
  Body
> & {
  /**
   * The status of the replies of the handler's data (a 2xx with a body, e.g. 201 for a route
   * that creates); a `Response` the handler returns keeps its own. Errors keep theirs.
   * @default 200
   */
  status?: number
}

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

const JSON_TYPE = JSON_CONTENT_TYPE

function toResponse(result: HandlerResult, init: ResponseInit = {}): Response {
  const headers = new Headers(result.headers)
  new Headers(init.headers).forEach((value, name) => headers.set(name, value))
  return new Response(result.body, { status: init.status ?? result.status, headers })
}

function headerRecord(init: HeadersInit | undefined): Record<string, string> {
  const record: Record<string, string> = {}
  new Headers(init).forEach((value, name) => (record[name] = value))
  return record
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

/** A Web-standard handler, as Bun, Deno, Hono or a Next.js route call it. */
export type FetchHandler = (
  request: Request,
  context: RequestContext
) => Response | Promise<Response>

/** Options of the node:http ⇄ `Request`/`Response` bridge. */
export interface NodeBridgeOptions {
  /**
   * The largest body read before the handler runs; more is answered 413 (`BA603`) and the
   * connection closes. @default the core's `limits.maxBodyBytes` with `auth.nodeListener`, else
   * 64 KiB
   */
  maxBodyBytes?: number
  /**
   * The origin of the built `Request`'s URL (`https://api.example.com`). @default
   * `http://<Host header>` when it is a plain host name or address, else `http://localhost`
   */
  origin?: string
  /**
   * How far `X-Forwarded-For` is trusted for `context.ip` (see the Express adapter's `trust
   * proxy`): `false` (default) takes the socket's peer address.
   */
  trustProxy?: TrustProxy
  /** Reports what the handler threw (it is answered 500 `BA600`). @default `console.error` */
  onError?: (error: unknown) => void
}

/** Methods a `Request` cannot carry (the constructor throws): answered 405 (`BA605`). */
const FORBIDDEN_METHODS = new Set(['CONNECT', 'TRACE', 'TRACK'])
const HOST = /^(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$/

/** The path and query of a request target: origin-form (`/a?b`) or absolute-form (`http://h/a?b`). */
function targetPath(target: string): string {
  if (target.startsWith('/') && !target.startsWith('//')) return target
  let url: URL
  try {
    url = new URL(target)
  } catch (cause) {
    throw new InvalidMessageError('request target', 'not a path or an absolute URL', { cause })
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new InvalidMessageError('request target', 'not an http(s) URL')
  }
  return url.pathname + url.search
}

/**
 * A Web `Request` for a node:http request: the body read first (at most `maxBodyBytes`), the URL
 * built from `origin` and the request target (absolute-form targets keep their path and query).
 * Rejects with a `BetterAuthError` for what a `Request` cannot be built from: 405 `BA605` for
 * `TRACE`/`TRACK`/`CONNECT`, 413 `BA603` for a body over the limit, 400 `BA101` for anything else.
 */
export async function toWebRequest(
  req: IncomingMessage,
  options: Pick<NodeBridgeOptions, 'maxBodyBytes' | 'origin'> = {}
): Promise<Request> {
  const method = (req.method ?? 'GET').toUpperCase()
  if (FORBIDDEN_METHODS.has(method)) throw new MethodNotAllowedError()
  const path = targetPath(req.url ?? '/')
  const host = req.headers.host
  const origin =
    options.origin ?? `http://${host !== undefined && HOST.test(host) ? host : 'localhost'}`
  const body = await readBody(req, options.maxBodyBytes ?? DEFAULT_BODY_LIMIT)
  const headers = new Headers()
  try {
    for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
      headers.append(req.rawHeaders[i] as string, req.rawHeaders[i + 1] as string)
    }
    const init: RequestInit = { method, headers }
    // The body is read whole: it goes on with its length, chunked or not. A `Request` of `GET` or
    // `HEAD` cannot carry one, so such a body is dropped, its length kept, and a header-form check
    // refuses the request (400 BA101) instead of taking it for one without a body.
    if (body.byteLength > 0 || headers.has('transfer-encoding')) {
      headers.delete('transfer-encoding')
      headers.set('content-length', String(body.byteLength))
    }
    if (method !== 'GET' && method !== 'HEAD') {
      init.body = new Uint8Array(
        body.buffer,
        body.byteOffset,
        body.byteLength
      ) as Uint8Array<ArrayBuffer>
    }
    return new Request(new URL(path, origin), init)
  } catch (cause) {
    throw new InvalidMessageError('request', 'cannot be represented as a Request', { cause })
  }
}

/** Writes a Web `Response` on a node:http response (an explicit length, no body for HEAD). */
export async function writeWebResponse(
  res: ServerResponse,
  response: Response,
  method = 'GET'
): Promise<void> {
  const body = Buffer.from(await response.arrayBuffer())
  const headers: Record<string, string | string[]> = {}
  response.headers.forEach((value, name) => {
    if (name !== 'set-cookie') headers[name] = value
  })
  const cookies = response.headers.getSetCookie()
  if (cookies.length > 0) headers['set-cookie'] = cookies
  headers['content-length'] = String(body.byteLength)
  res.writeHead(response.status, headers)
  res.end(method === 'HEAD' ? undefined : body)
}

function errorResponse(
  res: ServerResponse,
  error: BetterAuthError,
  core?: Pick<AdapterCore, 'errorResult'>
): void {
  if (res.headersSent) {
    res.destroy()
    return
  }
  const result = core?.errorResult(error) ?? plainErrorResult(error)
  // After a refused body the rest of it is not read: the connection closes with the answer.
  if (error instanceof PayloadTooLargeError || error.status === 405) res.shouldKeepAlive = false
  res.writeHead(result.status, {
    ...result.headers,
    'content-length': String(Buffer.byteLength(result.body)),
  })
  res.end(result.body)
}

/**
 * A node:http request listener serving a Web handler: `createServer(nodeListener(handle))`.
 * Whatever the request line, method, headers or body size, the answer is the handler's, or the
 * protocol's JSON error body: 405 `BA605` for methods a `Request` cannot carry, 413 `BA603` (and
 * the connection closes) for a body over `maxBodyBytes`, 400 `BA101` for a request that cannot
 * become a `Request`, 500 `BA600` when the handler throws. `context.ip` is the client IP (see
 * `trustProxy`). Pair it with {@link handleClientErrors} for what node's parser refuses itself.
 */
export function nodeListener(
  handler: FetchHandler,
  options: NodeBridgeOptions & { core?: Pick<AdapterCore, 'errorResult'> } = {}
): (req: IncomingMessage, res: ServerResponse) => void {
  const onError = options.onError ?? ((error: unknown) => console.error(error))
  return (req, res) => {
    const method = (req.method ?? 'GET').toUpperCase()
    const ip = forwardedClientIp(
      req.socket?.remoteAddress,
      req.headers['x-forwarded-for'],
      options.trustProxy
    )
    toWebRequest(req, options)
      .then(
        async request => {
          let response: Response
          try {
            response = await handler(request, ip === undefined ? {} : { ip })
          } catch (error) {
            if (!(error instanceof BetterAuthError)) onError(error)
            errorResponse(res, toBetterAuthError(error), options.core)
            return
          }
          await writeWebResponse(res, response, method)
        },
        error => errorResponse(res, toBetterAuthError(error), options.core)
      )
      .catch(error => {
        onError(error)
        try {
          errorResponse(res, toBetterAuthError(error), options.core)
        } catch {
          res.destroy()
        }
      })
  }
}

/** The core with Web-standard `Request → Response` entry points. */
export class FetchBetterAuth<Attributes = unknown> extends AdapterBase<Attributes> {
  private readonly routes: ProtocolRoutes
  private readonly limit: number
  private readonly clientIp: ((request: Request) => string | undefined) | undefined

  constructor(core: BetterAuthServer<Attributes>, options: FetchOptions = {}) {
    super(core)
    this.routes = new ProtocolRoutes(core, options)
    this.limit = bodyLimit(core)
    this.clientIp = options.clientIp
  }

  /** The request context: the caller's, with the path and (see `clientIp`) the client IP. */
  private contextOf(request: Request, path: string, context: RequestContext): RequestContext {
    const ctx: RequestContext = { path, ...context }
    if (ctx.ip === undefined && this.clientIp !== undefined) {
      const ip = this.clientIp(request)
      if (ip !== undefined) ctx.ip = ip
    }
    return ctx
  }

  /**
   * A node:http request listener serving `handler` (by default the protocol endpoints alone)
   * through the bridge of {@link nodeListener}, with the core's body limit and error logging:
   * `handleClientErrors(createServer(auth.nodeListener(handle))).listen(8080)`.
   */
  nodeListener(
    handler: FetchHandler = this.fetch,
    options: NodeBridgeOptions = {}
  ): (req: IncomingMessage, res: ServerResponse) => void {
    return nodeListener(handler, {
      maxBodyBytes: this.limit,
      ...options,
      core: this.core,
    })
  }

  /**
   * Liveness and readiness (`GET /healthz`, `GET /readyz`; see `healthRoutes`), opt-in: the
   * returned function answers a health path and resolves `undefined` for any other request.
   *
   *   const health = auth.health()
   *   const handle = async (request: Request) => (await health(request)) ?? auth.fetch(request)
   */
  health(options: HealthOptions = {}): (request: Request) => Promise<Response | undefined> {
    const routes = healthRoutes(this.core, { logger: this.core.logger, ...options })
    return async request => {
      const answer = routes.answer(request.method, new URL(request.url).pathname)
      if (answer === undefined) return undefined
      const result = await answer
      return new Response(request.method === 'HEAD' ? null : result.body, {
        status: result.status,
        headers: result.headers,
      })
    }
  }

  /**
   * The admin endpoints (`GET /admin/identities/:identity`, …; see `adminHttp`), off unless
   * mounted: the returned function answers a request under the prefix (`/admin`) and resolves
   * `undefined` for any other. `authorize` gets the `Request` and is required: they are never
   * open. Pass the client IP as `context.ip`, as for {@link FetchBetterAuth.fetch}.
   *
   *   const admin = auth.adminHandler({ authorize: request => operatorOf(request) })
   *   const handle = async (request: Request) => (await admin(request)) ?? auth.fetch(request)
   */
  adminHandler(
    options: AdminHttpOptions<Request>
  ): (request: Request, context?: RequestContext) => Promise<Response | undefined> {
    const admin = adminHttp(this.core, options)
    return async (request, context = {}) => {
      const path = new URL(request.url).pathname
      if (!admin.owns(path)) return undefined
      const ctx = this.contextOf(request, path, context)
      let body: Uint8Array
      try {
        body = await readRequestBody(request, this.limit)
      } catch (error) {
        return toResponse(admin.fail(error, { ...ctx }))
      }
      const result = await admin.handle({
        method: request.method,
        path,
        body,
        request,
        context: ctx,
      })
      return result === undefined ? undefined : toResponse(result)
    }
  }

  /** Whether `request` is for a protocol endpoint (or the OpenAPI document). */
  matches(request: Request): boolean {
    return this.routes.has(new URL(request.url).pathname)
  }

  /**
   * Answers the protocol endpoints; any other path gets 404 (BA604), a wrong method 405 (BA605)
   * with `Allow`. An arrow function, so it can be passed on as it is.
   *
   * Pass the client IP as `context.ip`: a `Request` does not carry it, and without it every
   * request shares one per-IP rate-limit bucket. Where it comes from:
   * - node:http: `auth.nodeListener(handler)` passes the socket address (`trustProxy` for
   *   `X-Forwarded-For`);
   * - Bun: `server.requestIP(request)?.address` (second argument of `fetch`);
   * - Deno: `info.remoteAddr.hostname` (second argument of the `Deno.serve` handler);
   * - Hono: `getConnInfo(c).remote.address` (from the runtime's Hono adapter);
   * - Next.js: the left-most `x-forwarded-for` entry, only behind a proxy that sets it;
   * - Cloudflare Workers: the `cf-connecting-ip` header.
   */
  readonly fetch = async (request: Request, context: RequestContext = {}): Promise<Response> => {
    const path = normalizePath(new URL(request.url).pathname)
    const ctx = this.contextOf(request, path, context)
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
    const ctx = this.contextOf(request, new URL(request.url).pathname, context)
    let principal: AccessPrincipal<Attributes, Body> | undefined
    let body: Uint8Array
    try {
      body = await readRequestBody(request, this.limit)
      principal = usesHeaderForm(request.headers, options.binding)
        ? await this.headerAccess<Body>(request, body, ctx, options)
        : await checkAccess<Attributes, Body, Request>(this.core, body, ctx, request, options)
    } catch (error) {
      const result = this.core.errorResult(error, { route: ctx.path, ip: ctx.ip })
      return {
        ok: false,
        response: toResponse(result),
        error: toBetterAuthError(error),
      }
    }
    if (principal !== undefined) principals.set(request, principal)
    const nonce = principal?.nonce
    const requestSignature = principal?.requestSignature
    return {
      ok: true,
      principal,
      body,
      respond: async (data: unknown, init: ResponseInit = {}) => {
        if (requestSignature !== undefined) {
          const reply =
            data instanceof Response
              ? data
              : new Response(JSON.stringify(data ?? null), {
                  ...init,
                  headers: { 'content-type': JSON_TYPE, ...headerRecord(init.headers) },
                })
          return this.signed(reply, requestSignature, request.method)
        }
        const text =
          nonce === undefined ? JSON.stringify(data ?? null) : await this.core.respond(nonce, data)
        return toResponse({ status: 200, headers: { 'content-type': JSON_TYPE }, body: text }, init)
      },
    }
  }

  /** The header form of `checkAccess`: verified by the core, authorized, the body parsed. */
  private async headerAccess<Body>(
    request: Request,
    body: Uint8Array,
    context: RequestContext,
    options: FetchAccessOptions<Attributes, Body>
  ): Promise<AccessPrincipal<Attributes, Body> | undefined> {
    const text = new TextDecoder().decode(body)
    let parsed: unknown = text === '' ? undefined : text
    try {
      if (text !== '') parsed = JSON.parse(text) as unknown
    } catch {
      // not JSON: the handler gets the text
    }
    return settleAccess(
      () =>
        this.core.verifyHeaderAccess<Body>(
          {
            method: request.method,
            url: request.url,
            headers: request.headers,
            parsed: parsed as Body,
            ...(body.length === 0 ? {} : { body }),
          },
          context,
          options
        ),
      options,
      request
    )
  }

  /**
   * A header-form reply: the response as it is, with the response-signature headers (< 400). A
   * reply to HEAD has no body, and its signature covers none.
   */
  private async signed(
    response: Response,
    requestSignature: Uint8Array,
    method: string
  ): Promise<Response> {
    if (response.status >= 400) return response
    const head = method === 'HEAD'
    const bytes = head ? new Uint8Array(0) : new Uint8Array(await response.arrayBuffer())
    const headers = new Headers(response.headers)
    const signature = await this.core.signHeaderResponse({
      status: response.status,
      body: bytes,
      requestSignature,
    })
    for (const [name, value] of Object.entries(signature)) headers.set(name, value)
    const nullBody = head || response.status === 204 || response.status === 304
    return new Response(nullBody ? null : bytes, {
      status: response.status,
      statusText: response.statusText,
      headers,
    })
  }

  /**
   * A protected handler: `(request, context?) => Response`; pass the client IP as `context.ip`
   * (see {@link FetchBetterAuth.fetch}). The handler returns the reply data, which is
   * sent as a signed response envelope, or a `Response`, sent as it is; a `BetterAuthError` it
   * throws becomes its error answer.
   */
  requireAccess<Body = unknown>(
    handler: AccessHandler<Attributes, Body>,
    options?: FetchRequireAccessOptions<Attributes, Body> & { credentialsRequired?: true }
  ): (request: Request, context?: RequestContext) => Promise<Response>
  requireAccess<Body = unknown>(
    handler: AccessHandler<
      Attributes,
      Body | undefined,
      AccessPrincipal<Attributes, Body> | undefined
    >,
    options: FetchRequireAccessOptions<Attributes, Body> & { credentialsRequired: false }
  ): (request: Request, context?: RequestContext) => Promise<Response>
  requireAccess<Body = unknown>(
    handler: AccessHandler<Attributes, Body, never>,
    options: FetchRequireAccessOptions<Attributes, Body> = {}
  ): (request: Request, context?: RequestContext) => Promise<Response> {
    const { status: wanted, ...access } = options
    const init = { status: successStatus(wanted) }
    return async (request: Request, context: RequestContext = {}) => {
      const check = await this.checkAccess<Body>(request, access, context)
      if (!check.ok) return check.response
      try {
        const data = await handler({
          principal: check.principal as never,
          data: check.principal?.request as Body,
          body: check.body,
          request,
        })
        if (data instanceof Response) {
          const signature = check.principal?.requestSignature
          return signature === undefined ? data : await this.signed(data, signature, request.method)
        }
        return await check.respond(data, init)
      } catch (error) {
        if (!(error instanceof BetterAuthError)) throw error
        return toResponse(this.core.errorResult(error, { route: new URL(request.url).pathname }))
      }
    }
  }
}

/** The principal `checkAccess` / `requireAccess` verified for this `Request`, or `undefined`. */
export function getPrincipal<Attributes = unknown, Body = unknown>(
  request: Request
): AccessPrincipal<Attributes, Body> | undefined {
  return principals.get(request) as AccessPrincipal<Attributes, Body> | undefined
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
