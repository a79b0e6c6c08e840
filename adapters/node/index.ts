/**
 * The standalone server: the protocol on plain `node:http`, no framework. It answers the
 * protocol endpoints and the response-key endpoint from the core's route table, and serves
 * access-protected routes whose return values are signed into response envelopes.
 *
 *   const server = createServer(auth)          // a core, or BetterAuthOptions to build one
 *   server.protect('/foo/bar', ({ request }) => ({ wasFoo: request.foo }))
 *   await server.listen(8080, '127.0.0.1')
 *
 * Imported as `better-auth-protocol/node`.
 *
 * Keep-alive is on (node's default); bodies are read with a size limit (BA603, 413); an unknown
 * path answers BA604 (404) and a known path with another method BA605 (405, with `Allow`).
 */
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerOptions as HttpServerOptions,
  type ServerResponse,
} from 'node:http'
import type { AddressInfo } from 'node:net'
import { MethodNotAllowedError, NotFoundError } from '../../src/errors'
import type {
  AccessPrincipal,
  BetterAuthOptions,
  BetterAuthServer,
  HandlerResult,
  RequestContext,
} from '../../src/server/core'
import type { Endpoint } from '../../src/server/routes'
import { checkAccess, normalizePath, openapiPath, type AccessOptions } from '../shared/access'
import { readBody } from '../shared/body'
import { closeAfterOverlongBody, writeResult } from '../shared/node'
import { clientIp, type TrustProxy } from '../shared/ip'
import { ProtocolRoutes, coreOf, type MountOptions } from '../shared/routes'

export { UnauthorizedError, type Authorize } from '../shared/access'

/** A protected route's handler: gets the verified principal, returns the data to sign. */
export type ProtectedHandler<Attributes = unknown, Request = unknown, Response = unknown> = (
  principal: AccessPrincipal<Attributes, Request>,
  req: IncomingMessage
) => Response | Promise<Response>

/**
 * A raw route's handler: gets the body bytes, returns the whole answer. Thrown errors become
 * error bodies (a BetterAuthError keeps its code and status; anything else is BA600, 500).
 */
export type RawHandler = (
  body: Buffer,
  req: IncomingMessage,
  context: RequestContext
) => HandlerResult | Promise<HandlerResult>

/**
 * Options of a protected route: `authorize` (403 BA306 when it refuses), and the core's
 * per-route `checkRevocation` and `rateLimit`. An access request is always required here.
 */
export type ProtectOptions<Attributes = unknown, Request = unknown> = Omit<
  AccessOptions<Attributes, Request, IncomingMessage>,
  'credentialsRequired'
>

export interface StandaloneOptions<Attributes = unknown> extends MountOptions {
  /** Protected routes to add at once: path → handler (POST). Same as calling `protect`. */
  routes?: Record<string, ProtectedHandler<Attributes>>
  /** Largest request body, in bytes. @default the core's `limits.maxBodyBytes`, else 65536 */
  maxBodyBytes?: number
  /**
   * Which `X-Forwarded-For` entries to believe for the client IP (rate limits, logs): `false`
   * ignores the header, `true` trusts every proxy (left-most address), a number n trusts n
   * proxies in front of the server. @default false: the socket's remote address
   */
  trustProxy?: TrustProxy
  /**
   * Answer CORS: the allowed origin (`'*'` or one origin) is sent on every reply, and `OPTIONS`
   * preflights of known paths get 204. @default undefined (no CORS headers)
   */
  cors?: string
  /** Idle keep-alive connections are closed after this many ms. @default 5000 (node's default) */
  keepAliveTimeout?: number
  /** Time allowed to receive a whole request, ms. @default 30000 */
  requestTimeout?: number
  /** Options passed to `http.createServer`. */
  http?: HttpServerOptions
}

interface Route {
  methods: readonly string[]
  allow: string
  run(body: Buffer, req: IncomingMessage, context: RequestContext): Promise<HandlerResult>
}

const JSON_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'content-type': 'application/json; charset=utf-8',
})
const READS_BODY = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])

/** A standalone Better Auth server on `node:http`. Build it with `createServer`. */
export class StandaloneServer<Attributes = unknown> {
  /** The underlying `http.Server` (created on construction, listening after `listen`). */
  readonly server: Server
  /** The request listener, to mount on an `http.Server` of your own instead. */
  readonly listener: (req: IncomingMessage, res: ServerResponse) => void

  private readonly routes = new Map<string, Route>()
  private readonly maxBodyBytes: number
  private readonly trustProxy: TrustProxy
  private readonly cors: string | undefined

  constructor(
    readonly auth: BetterAuthServer<Attributes>,
    options: StandaloneOptions<Attributes> = {}
  ) {
    this.maxBodyBytes = options.maxBodyBytes ?? auth.limits.maxBodyBytes ?? 65536
    this.trustProxy = options.trustProxy ?? false
    this.cors = options.cors
    // The protocol endpoints and their OpenAPI document, as every adapter mounts them.
    const protocol = new ProtocolRoutes(auth as BetterAuthServer<unknown>, options)
    for (const info of protocol.routes) {
      this.add(info.path, info.methods, this.endpoint(info.endpoint))
    }
    const openapi = openapiPath(options.prefix, options.openapi)
    if (openapi !== undefined) {
      this.route(openapi, () => {
        const match = protocol.match(openapi, 'GET')
        const document = match?.kind === 'openapi' ? match.document : '{}'
        return { status: 200, headers: { ...JSON_HEADERS }, body: document }
      }, ['GET'])
    }
    for (const [path, handler] of Object.entries(options.routes ?? {})) {
      this.protect(path, handler)
    }
    this.listener = (req, res) => this.dispatch(req, res)
    this.server = createHttpServer(options.http ?? {}, this.listener)
    this.server.keepAliveTimeout = options.keepAliveTimeout ?? 5000
    this.server.requestTimeout = options.requestTimeout ?? 30_000
  }

  /**
   * Adds an access-protected route: the request must be a valid access request; `handler` gets
   * the principal and returns the response data, which is signed into a response envelope that
   * echoes the request nonce. Errors it throws become error bodies (e.g. `ForbiddenError`, 403).
   */
  protect<Request = unknown, Response = unknown>(
    path: string,
    handler: ProtectedHandler<Attributes, Request, Response>,
    options: ProtectOptions<Attributes, Request> & { methods?: readonly string[] } = {}
  ): this {
    const auth = this.auth
    const { methods = ['POST'], ...check } = options
    const access: AccessOptions<Attributes, Request, IncomingMessage> = {
      ...check,
      credentialsRequired: true,
    }
    return this.add(path, methods, async (body, req, context) => {
      const principal = (await checkAccess(auth, body, context, req, access)) as AccessPrincipal<
        Attributes,
        Request
      >
      const data = await handler(principal, req)
      const reply = await auth.respond(principal.nonce, data)
      return { status: 200, headers: JSON_HEADERS as Record<string, string>, body: reply }
    })
  }

  /** Adds an unprotected route answered by `handler` (health checks, custom replies). */
  route(path: string, handler: RawHandler, methods: readonly string[] = ['POST']): this {
    return this.add(path, methods, async (body, req, context) => handler(body, req, context))
  }

  /** Starts listening; resolves with the bound address. */
  listen(port: number, host = '127.0.0.1'): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      const onError = (error: Error) => reject(error)
      this.server.once('error', onError)
      this.server.listen(port, host, () => {
        this.server.off('error', onError)
        resolve(this.server.address() as AddressInfo)
      })
    })
  }

  /** Stops accepting connections, closes idle ones and resolves when all are done. */
  close(): Promise<void> {
    return new Promise((resolve, reject) => {
      if (!this.server.listening) {
        resolve()
        return
      }
      this.server.close(error => (error === undefined ? resolve() : reject(error)))
      this.server.closeIdleConnections()
    })
  }

  // ---------------------------------------------------------------- internals

  private add(path: string, methods: readonly string[], run: Route['run']): this {
    if (!path.startsWith('/')) throw new TypeError(`a path starts with "/": ${path}`)
    const upper = methods.map(m => m.toUpperCase())
    this.routes.set(normalizePath(path), { methods: upper, allow: upper.join(', '), run })
    return this
  }

  private endpoint(endpoint: Endpoint): Route['run'] {
    const auth = this.auth
    return (body, _req, context) => auth.handle(endpoint, body, context)
  }

  private context(req: IncomingMessage, path: string): RequestContext {
    const ip = clientIp(req.socket.remoteAddress, req.headers['x-forwarded-for'], this.trustProxy)
    return { ip, path }
  }

  private dispatch(req: IncomingMessage, res: ServerResponse): void {
    const url = req.url ?? '/'
    const query = url.indexOf('?')
    const path = normalizePath(query === -1 ? url : url.slice(0, query))
    const route = this.routes.get(path)
    const method = req.method ?? 'GET'
    if (route === undefined) {
      this.fail(res, new NotFoundError(), { path })
      return
    }
    if (!route.methods.includes(method)) {
      if (method === 'OPTIONS' && this.cors !== undefined) {
        this.preflight(res, route)
        return
      }
      res.setHeader('allow', route.allow)
      this.fail(res, new MethodNotAllowedError(), { path, method })
      return
    }
    const context = this.context(req, path)
    const body: Promise<Buffer> = READS_BODY.has(method)
      ? readBody(req, this.maxBodyBytes)
      : Promise.resolve(Buffer.alloc(0))
    body
      .then(bytes => route.run(bytes, req, context))
      .then(result => this.send(res, result))
      .catch(error => {
        if (res.headersSent) return
        if (res.writableEnded || req.socket.destroyed) return // the client went away
        closeAfterOverlongBody(error, (name, value) => res.setHeader(name, value))
        this.send(res, this.auth.errorResult(error, { ...context }))
      })
  }

  private fail(res: ServerResponse, error: Error, context: Record<string, unknown>): void {
    this.send(res, this.auth.errorResult(error, context))
  }

  private preflight(res: ServerResponse, route: Route): void {
    res.writeHead(204, {
      'access-control-allow-origin': this.cors as string,
      'access-control-allow-methods': route.allow,
      'access-control-allow-headers': 'content-type',
      'access-control-max-age': '600',
    })
    res.end()
  }

  private send(res: ServerResponse, result: HandlerResult): void {
    if (res.headersSent || res.destroyed) return
    if (this.cors !== undefined) res.setHeader('access-control-allow-origin', this.cors)
    writeResult(res, result)
  }
}

/**
 * Creates a standalone server (call `listen` to start it) for a core, or for a core built from
 * `BetterAuthOptions`.
 */
export function createServer<Attributes = unknown>(
  auth: BetterAuthServer<Attributes> | BetterAuthOptions<Attributes>,
  options: StandaloneOptions<Attributes> = {}
): StandaloneServer<Attributes> {
  return new StandaloneServer(coreOf(auth), options)
}
