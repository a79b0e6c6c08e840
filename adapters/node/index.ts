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
 * `GET /healthz` (liveness) and `GET /readyz` (readiness: every store answers within a deadline)
 * are on by default. `close()` shuts down gracefully: in-flight requests are answered with
 * `Connection: close`, and whatever is still open at the deadline (10 s) is cut;
 * `closeOnSignals()` does it on SIGTERM and SIGINT, then closes the core and exits.
 *
 * `gracefulShutdown(httpServer, …)` and `healthHandler(auth)` do the same for the `http.Server`
 * of any framework (Express, Koa, NestJS).
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
  Logger,
  RequestContext,
} from '../../src/server/core'
import type { Endpoint } from '../../src/server/routes'
import { jsonHeaders } from '../../src/server/http'
import { normalizePath, type AccessOptions } from '../shared/access'
import { readBody } from '../shared/body'
import { bodyLimit, successStatus, type AdapterCore } from '../shared/core'
import {
  closeAfterOverlongBody,
  getPrincipal as principalOf,
  nodeAccess,
  parsedForHandler,
  writeResult,
} from '../shared/node'
import { HEADER_FORM_EXPOSED_HEADERS, HEADER_FORM_REQUEST_HEADERS } from '../shared/binding'
import { declaresBody, handleClientErrors } from '../shared/http'
import { clientIp, type TrustProxy } from '../shared/ip'
import { ProtocolRoutes, coreOf, type MountOptions } from '../shared/routes'
import {
  DEFAULT_METRICS_PATH,
  metricsAnswer,
  metricsHandler,
  metricsOf,
  withMetrics,
  type StandaloneMetricsOption,
} from './metrics'
import {
  healthRoutes,
  type HealthOptions,
  type HealthRoutes,
  type HealthTarget,
} from '../../src/server/health'
import { adminHttp, type AdminHttpOptions } from '../../src/server/admin-http'
import { InFlight } from './in-flight'

export {
  BetterAuthHttpError,
  UnauthorizedError,
  type Authorize,
  type AccessOptions,
} from '../shared/access'
export type { AdapterCore } from '../shared/core'
export {
  DEFAULT_METRICS_PATH,
  metricsHandler,
  type MetricsSource,
  type StandaloneMetricsOption,
} from './metrics'
export {
  DEFAULT_READINESS_TIMEOUT_MS,
  HealthRoutes,
  formatLine,
  healthRoutes,
  lineLogger,
  readiness,
  type CheckState,
  type HealthOptions,
  type HealthTarget,
  type LineLoggerOptions,
  type Readiness,
  type ReadinessOptions,
} from '../../src/server/health'

/** The values of a route's `:name` segments (`/notes/:id` → `{ id }`), decoded. */
export type RouteParams = Record<string, string>

/**
 * A protected route's handler: gets the verified principal, the request and the values of the
 * path's `:name` segments; returns the data to sign.
 */
export type ProtectedHandler<Attributes = unknown, Request = unknown, Response = unknown> = (
  principal: AccessPrincipal<Attributes, Request>,
  req: IncomingMessage,
  params: RouteParams
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
 * A protected route's handler with optional access (`credentialsRequired: false`): the principal
 * is `undefined` for a caller without credentials, whose reply is plain JSON (not signed).
 */
export type OptionalAccessHandler<Attributes = unknown, Request = unknown, Response = unknown> = (
  principal: AccessPrincipal<Attributes, Request> | undefined,
  req: IncomingMessage,
  params: RouteParams
) => Response | Promise<Response>

/**
 * Options of a protected route: `authorize` (403 BA306 when it refuses), `credentialsRequired`
 * (`false`: optional access), `requestProperty` (where the principal is put on the request, as in
 * the other adapters; `getPrincipal(req)` finds it too), `clientIp`, and the core's per-route
 * `checkRevocation` and `rateLimit`.
 */
export interface ProtectOptions<Attributes = unknown, Request = unknown> extends AccessOptions<
  Attributes,
  Request,
  IncomingMessage
> {
  /** Where the principal is put on the request. @default 'betterAuth' */
  requestProperty?: string
  /** HTTP methods of the route. @default ['POST'] */
  methods?: readonly string[]
  /**
   * The status of the route's replies when the handler returns (a 2xx with a body, e.g. 201 for
   * a route that creates). Errors keep theirs. @default 200
   */
  status?: number
}

export interface StandaloneOptions<Attributes = unknown> extends MountOptions {
  /** Protected routes to add at once: path → handler (POST). Same as calling `protect`. */
  routes?: Record<string, ProtectedHandler<Attributes>>
  /** Largest request body, in bytes. @default the core's `limits.maxBodyBytes` */
  maxBodyBytes?: number
  /**
   * The client IP given to the core (rate limits, events), as in the other adapters. @default
   * the socket's address, or `X-Forwarded-For` as far as `trustProxy` says
   */
  clientIp?: (req: IncomingMessage) => string | undefined
  /**
   * Which `X-Forwarded-For` entries to believe for the client IP (rate limits, logs): `false`
   * ignores the header, `true` trusts every proxy (left-most address), a number n trusts n
   * proxies in front of the server. @default false: the socket's remote address
   */
  trustProxy?: TrustProxy
  /**
   * Answer CORS. `'*'` or one origin: sent as the allowed origin on every reply, and `OPTIONS`
   * preflights of known paths get 204. A list of origins: a request whose `Origin` is in the list
   * gets that origin back (with `Vary: Origin`) and its preflights 204; any other origin gets no
   * CORS headers, and its preflights 403. The response-signature headers of the header form are
   * exposed. @default undefined (no CORS headers)
   */
  cors?: string | readonly string[]
  /** Idle keep-alive connections are closed after this many ms. @default 5000 (node's default) */
  keepAliveTimeout?: number
  /** Time allowed to receive a whole request, ms. @default 30000 */
  requestTimeout?: number
  /** Options passed to `http.createServer`. */
  http?: HttpServerOptions
  /**
   * `GET /healthz` and `GET /readyz`: paths (`healthPath`, `readyPath`, false for none), the
   * readiness deadline `timeoutMs` (1500), or false to serve neither. @default on
   */
  health?: HealthOptions | false
  /**
   * `GET /metrics` in the Prometheus text format (prom-client): `true`, or `{ path, port }` to
   * serve them on a listener of their own (same host, started by `listen`). The core needs
   * `metrics: createMetrics()`; a core built here from options gets one. @default off
   */
  metrics?: StandaloneMetricsOption
  /**
   * How long `close()` waits for in-flight requests before cutting the connections, ms.
   * @default BETTER_AUTH_SHUTDOWN_TIMEOUT_MS, else 10000
   */
  shutdownTimeout?: number
  /**
   * The admin endpoints (`GET /admin/identities/:identity`, …; see `adminHttp`), off by default:
   * `{ authorize: req => actor | undefined, prefix? }`. `authorize` is required (a `TypeError`
   * without it): they are never open. The OpenAPI document then describes them. @default off
   */
  admin?: AdminHttpOptions<IncomingMessage> | false
}

interface Route {
  methods: readonly string[]
  allow: string
  run(
    body: Buffer,
    req: IncomingMessage,
    context: RequestContext,
    params: RouteParams
  ): Promise<HandlerResult>
}

/** A route whose path has `:name` segments, matched segment by segment. */
interface PatternRoute {
  /** The path's segments: a literal, or `{ name }` for a `:name` segment. */
  segments: (string | { name: string })[]
  route: Route
}

/** The params of `path` when it matches `pattern` (same number of segments), else `undefined`. */
function matchPattern(pattern: PatternRoute, path: string): RouteParams | undefined {
  const parts = path.split('/')
  if (parts.length !== pattern.segments.length) return undefined
  const params: RouteParams = {}
  for (let i = 0; i < parts.length; i++) {
    const segment = pattern.segments[i] as string | { name: string }
    const part = parts[i] as string
    if (typeof segment === 'string') {
      if (segment !== part) return undefined
      continue
    }
    if (part === '') return undefined
    try {
      params[segment.name] = decodeURIComponent(part)
    } catch {
      return undefined // malformed percent-encoding: no match (404)
    }
  }
  return params
}

const READS_BODY = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])

/**
 * A protected route's body as the access step reads it: the raw bytes, and what they parse to,
 * parsed only when read (the header form's `principal.request`; the classic form's comes from the
 * verified envelope). A class rather than an object literal with a getter: V8 makes each such
 * literal a dictionary-mode object.
 */
class LazyParsed {
  constructor(readonly rawBody: Buffer | string) {}

  get body(): unknown {
    return parsedForHandler(this.rawBody)
  }
}

/** A standalone Better Auth server on `node:http`. Build it with `createServer`. */
export class StandaloneServer<Attributes = unknown> {
  /** The underlying `http.Server` (created on construction, listening after `listen`). */
  readonly server: Server
  /** The request listener, to mount on an `http.Server` of your own instead. */
  readonly listener: (req: IncomingMessage, res: ServerResponse) => void

  private readonly routes = new Map<string, Route>()
  /** Routes with `:name` segments, tried in the order they were added after the exact paths. */
  private readonly patterns: (PatternRoute & { path: string })[] = []
  private readonly maxBodyBytes: number
  private readonly trustProxy: TrustProxy
  private readonly clientIp: ((req: IncomingMessage) => string | undefined) | undefined
  /** The allowed origin of a request, or undefined for no CORS headers. */
  private readonly corsOrigin: ((req: IncomingMessage) => string | undefined) | undefined

  constructor(
    readonly auth: BetterAuthServer<Attributes>,
    options: StandaloneOptions<Attributes> = {}
  ) {
    this.maxBodyBytes = options.maxBodyBytes ?? bodyLimit(auth)
    this.trustProxy = options.trustProxy ?? false
    this.clientIp = options.clientIp
    this.corsOrigin = corsOrigin(options.cors)
    // The protocol endpoints and their OpenAPI document, as every adapter mounts them.
    const admin =
      options.admin === undefined || options.admin === false
        ? undefined
        : adminHttp(auth, options.admin)
    const protocol = new ProtocolRoutes(
      auth,
      admin === undefined
        ? options
        : {
            ...options,
            openapiOptions: { ...options.openapiOptions, admin: { prefix: admin.prefix } },
          }
    )
    for (const info of protocol.routes) {
      this.add(info.path, info.methods, this.endpoint(info.endpoint))
    }
    if (protocol.openapi !== undefined) {
      const document = (): HandlerResult => ({
        status: 200,
        headers: jsonHeaders(),
        body: protocol.openapiDocument(),
      })
      this.route(protocol.openapi, document, ['GET'])
    }
    if (admin !== undefined) {
      // The admin endpoints (off by default), behind their authorization hook.
      for (const { path, methods } of admin.paths) {
        this.add(path, methods, async (body, req, context) => {
          const input = { method: req.method ?? 'GET', path: context.path ?? path, body }
          return (await admin.handle({ ...input, request: req, context })) as HandlerResult
        })
      }
    }
    for (const [path, handler] of Object.entries(options.routes ?? {})) {
      this.protect(path, handler)
    }
    if (options.health !== false) {
      this.health = healthRoutes(auth as HealthTarget, {
        logger: auth.logger,
        ...options.health,
      })
      const health = this.health
      for (const path of health.paths) {
        this.route(path, () => health.answer('GET', path) as Promise<HandlerResult>, [
          'GET',
          'HEAD',
        ])
      }
    }
    if (options.metrics !== undefined && options.metrics !== false) {
      const { path = DEFAULT_METRICS_PATH, port } = options.metrics === true ? {} : options.metrics
      const metrics = metricsOf(auth)
      if (port === undefined) this.route(path, () => metricsAnswer(metrics), ['GET', 'HEAD'])
      else
        this.metricsListener = { server: createHttpServer(metricsHandler(metrics, { path })), port }
    }
    this.listener = (req, res) => this.dispatch(req, res)
    // Request lines and headers node refuses, and CONNECT, get the protocol's error body too.
    this.server = handleClientErrors(createHttpServer(options.http ?? {}, this.listener))
    this.server.keepAliveTimeout = options.keepAliveTimeout ?? 5000
    this.server.requestTimeout = options.requestTimeout ?? 30_000
    this.shutdown = gracefulShutdown(this.server, {
      deadlineMs: options.shutdownTimeout,
      signals: [],
    })
  }

  /** The health paths, unless turned off. */
  readonly health: HealthRoutes | undefined
  /** The metrics' own listener (the `metrics.port` option), started by `listen`. */
  readonly metricsListener: { server: Server; port: number } | undefined
  private readonly shutdown: GracefulShutdown

  /**
   * Adds an access-protected route: the request must be a valid access request, in either form
   * (`binding`); `handler` gets the principal and returns the response data, which is signed into
   * a response envelope that echoes the request nonce (the body form) or sent as JSON with the
   * response-signature headers (the header form; `principal.request` is the parsed JSON body).
   * Errors it throws become error bodies (e.g. `ForbiddenError`, 403). A path segment `:name`
   * matches any one segment, given to the handler as `params.name`: `/notes/:id`.
   */
  protect<Request = unknown, Response = unknown>(
    path: string,
    handler: ProtectedHandler<Attributes, Request, Response>,
    options?: ProtectOptions<Attributes, Request> & { credentialsRequired?: true }
  ): this
  protect<Request = unknown, Response = unknown>(
    path: string,
    handler: OptionalAccessHandler<Attributes, Request, Response>,
    options: ProtectOptions<Attributes, Request> & { credentialsRequired: false }
  ): this
  protect<Request = unknown, Response = unknown>(
    path: string,
    handler:
      | ProtectedHandler<Attributes, Request, Response>
      | OptionalAccessHandler<Attributes, Request, Response>,
    options: ProtectOptions<Attributes, Request> = {}
  ): this {
    // The overloads pair an anonymous caller (`undefined`) with optional access only.
    const run = handler as OptionalAccessHandler<Attributes, Request, Response>
    const auth: AdapterCore<Attributes> = this.auth
    const { methods = ['POST'], status: wanted, ...access } = options
    const status = successStatus(wanted)
    access.route ??= path // the label of metrics and traces: the pattern, never a path with ids
    return this.add(path, methods, async (body, req, context, params) => {
      const target = {
        req,
        parsed: new LazyParsed(body),
        source: req,
        key: req,
        holder: req,
        setBody: () => undefined, // the handler gets the verified data from the principal
        context,
      }
      const { principal } = await nodeAccess(auth, target, access, '')
      const data = await run(principal, req, params)
      if (principal?.requestSignature !== undefined) {
        // The header form: the reply is plain JSON, signed in the response-signature headers.
        const text = JSON.stringify(data ?? null)
        const signature = await auth.signHeaderResponse({
          status,
          body: Buffer.from(text),
          requestSignature: principal.requestSignature,
        })
        return { status, headers: Object.assign(jsonHeaders(), signature), body: text }
      }
      const reply =
        principal === undefined
          ? JSON.stringify(data ?? null)
          : await auth.respond(principal.nonce, data)
      return { status, headers: jsonHeaders(), body: reply }
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
        const metrics = this.metricsListener
        if (metrics === undefined) return resolve(this.server.address() as AddressInfo)
        metrics.server.once('error', reject)
        metrics.server.listen(metrics.port, host, () => {
          metrics.server.off('error', reject)
          resolve(this.server.address() as AddressInfo)
        })
      })
    })
  }

  /**
   * Shuts down gracefully: stops accepting connections, closes idle ones, answers the requests in
   * flight with `Connection: close` (so each connection closes after its current response), and
   * cuts whatever is still open after `deadlineMs` (the `shutdownTimeout` option). Resolves when
   * every connection is closed. The core stays open (`auth.close()` closes it).
   */
  close(options: { deadlineMs?: number } = {}): Promise<void> {
    const metrics = this.metricsListener?.server
    if (metrics?.listening === true) {
      metrics.close()
      metrics.closeAllConnections()
    }
    return this.shutdown.close(options)
  }

  /**
   * On SIGTERM or SIGINT (`signals`): `close()`, then `auth.close()`, then exit 0 (1 if closing
   * failed). A second signal cuts the remaining connections at once.
   */
  closeOnSignals(options: Omit<ShutdownOptions, 'onClose'> = {}): this {
    gracefulShutdown(this.server, {
      ...options,
      deadlineMs: options.deadlineMs ?? this.shutdown.deadlineMs,
      onClose: () => this.auth.close(),
    })
    return this
  }

  // ---------------------------------------------------------------- internals

  private add(path: string, methods: readonly string[], run: Route['run']): this {
    if (!path.startsWith('/')) throw new TypeError(`a path starts with "/": ${path}`)
    const upper = methods.map(m => m.toUpperCase())
    const route: Route = { methods: upper, allow: upper.join(', '), run }
    const normalized = normalizePath(path)
    if (!normalized.includes('/:')) {
      this.routes.set(normalized, route)
      return this
    }
    const segments = normalized
      .split('/')
      .map(part => (part.startsWith(':') && part.length > 1 ? { name: part.slice(1) } : part))
    const existing = this.patterns.findIndex(p => p.path === normalized)
    const entry = { path: normalized, segments, route }
    if (existing === -1) this.patterns.push(entry)
    else this.patterns[existing] = entry // as for exact paths: the last definition wins
    return this
  }

  /** The route of a path, exact paths first, and the values of its `:name` segments. */
  private find(path: string): { route: Route; params: RouteParams } | undefined {
    const exact = this.routes.get(path)
    if (exact !== undefined) return { route: exact, params: {} }
    for (const pattern of this.patterns) {
      const params = matchPattern(pattern, path)
      if (params !== undefined) return { route: pattern.route, params }
    }
    return undefined
  }

  private endpoint(endpoint: Endpoint): Route['run'] {
    const auth = this.auth
    return (body, _req, context) => auth.handle(endpoint, body, context)
  }

  private context(req: IncomingMessage, path: string): RequestContext {
    const ip =
      this.clientIp?.(req) ??
      clientIp(req.socket.remoteAddress, req.headers['x-forwarded-for'], this.trustProxy)
    return { ip, path }
  }

  private dispatch(req: IncomingMessage, res: ServerResponse): void {
    const url = req.url ?? '/'
    const query = url.indexOf('?')
    const path = normalizePath(query === -1 ? url : url.slice(0, query))
    const found = this.find(path)
    const method = req.method ?? 'GET'
    const origin = this.corsOrigin?.(req)
    if (origin !== undefined) {
      if (origin !== '*') res.setHeader('vary', 'Origin')
      res.setHeader('access-control-allow-origin', origin)
    }
    if (found === undefined) {
      this.fail(res, new NotFoundError(), { path })
      return
    }
    const { route, params } = found
    if (!route.methods.includes(method)) {
      if (method === 'OPTIONS' && this.corsOrigin !== undefined) {
        if (origin !== undefined) {
          this.preflight(res, route)
          return
        }
        if (req.headers['access-control-request-method'] !== undefined) {
          // A preflight from an origin not in the list: refused, nothing allowed.
          res.writeHead(403, { 'content-length': '0' }).end()
          return
        }
      }
      res.setHeader('allow', route.allow)
      this.fail(res, new MethodNotAllowedError(), { path, method })
      return
    }
    const context = this.context(req, path)
    const body: Promise<Buffer> =
      // A body sent with another method (`GET`, `HEAD` …) is read all the same, so that a
      // header-form signature is checked over it (`content-digest`) rather than the body ignored.
      READS_BODY.has(method) || declaresBody(req.headers)
        ? readBody(req, this.maxBodyBytes)
        : Promise.resolve(Buffer.alloc(0))
    body
      .then(bytes => route.run(bytes, req, context, params))
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
      'access-control-allow-methods': route.allow,
      'access-control-allow-headers': ['content-type', ...HEADER_FORM_REQUEST_HEADERS].join(', '),
      'access-control-max-age': '600',
    })
    res.end()
  }

  private send(res: ServerResponse, result: HandlerResult): void {
    if (res.headersSent || res.destroyed) return
    if (res.hasHeader('access-control-allow-origin')) {
      res.setHeader('access-control-expose-headers', EXPOSED_HEADERS)
    }
    writeResult(res, result)
  }
}

const EXPOSED_HEADERS = HEADER_FORM_EXPOSED_HEADERS.join(', ')

/** The `cors` option as a function of the request: the origin to allow, or undefined. */
function corsOrigin(
  cors: string | readonly string[] | undefined
): ((req: IncomingMessage) => string | undefined) | undefined {
  if (cors === undefined) return undefined
  if (typeof cors === 'string') {
    if (cors === '') throw new TypeError('cors: an origin, "*", or a list of origins')
    return () => cors
  }
  if (!Array.isArray(cors) || cors.some(o => typeof o !== 'string' || o === '' || o === '*')) {
    throw new TypeError('cors: a list of origins (each like "https://app.example", no "*")')
  }
  const allowed = new Set(cors)
  return req => {
    const origin = req.headers.origin
    return origin !== undefined && allowed.has(origin) ? origin : undefined
  }
}

/** The principal a protected route's access check put on this request, or `undefined`. */
export function getPrincipal<Attributes = unknown, Body = unknown>(
  req: IncomingMessage
): AccessPrincipal<Attributes, Body> | undefined {
  return principalOf<Attributes, Body>(req)
}

/**
 * Creates a standalone server (call `listen` to start it) for a core, or for a core built from
 * `BetterAuthOptions`.
 */
export function createServer<Attributes = unknown>(
  auth: BetterAuthServer<Attributes> | BetterAuthOptions<Attributes>,
  options: StandaloneOptions<Attributes> = {}
): StandaloneServer<Attributes> {
  return new StandaloneServer(coreOf(withMetrics(auth, options.metrics)), options)
}

// ------------------------------------------------------------------------------------ shutdown

export interface ShutdownOptions {
  /**
   * How long to wait for the requests in flight before cutting every connection, ms.
   * @default BETTER_AUTH_SHUTDOWN_TIMEOUT_MS, else 10000
   */
  deadlineMs?: number
  /** Runs once the server is closed, e.g. `() => auth.close()`. */
  onClose?: () => unknown
  /** The signals that start the shutdown; [] for none. @default ['SIGTERM', 'SIGINT'] */
  signals?: readonly NodeJS.Signals[]
  /** After a shutdown started by a signal, exit (0, or 1 if closing failed). @default true */
  exit?: boolean
  /** Where the shutdown is logged (one line each). @default none */
  logger?: Pick<Logger, 'info' | 'error'>
}

/** A server that closes gracefully; see `gracefulShutdown`. */
export interface GracefulShutdown {
  /** The deadline `close()` uses unless told otherwise, ms. */
  readonly deadlineMs: number
  /** Whether the shutdown began. */
  readonly closing: boolean
  /**
   * Stops accepting connections, answers the requests in flight with `Connection: close`, cuts
   * whatever is left after the deadline, then runs `onClose`. Resolves when all that is done;
   * calling it again returns the same promise.
   */
  close(options?: { deadlineMs?: number }): Promise<void>
}

export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 10_000

/** Per server: the responses in flight and the shutdown, shared by every helper on it. */
interface Drain {
  closing: boolean
  closed: Promise<void> | undefined
  begin(deadlineMs: number): Promise<void>
  cutNow(): void
}
const drains = new WeakMap<Server, Drain>()

function drainOf(server: Server): Drain {
  const existing = drains.get(server)
  if (existing !== undefined) return existing
  const inFlight = new InFlight()
  let timer: NodeJS.Timeout | undefined
  const closeAfter = (res: ServerResponse): void => {
    if (!res.headersSent) res.setHeader('connection', 'close')
  }
  const drain: Drain = {
    closing: false,
    closed: undefined,
    begin(deadlineMs) {
      if (drain.closed !== undefined) return drain.closed
      drain.closing = true
      // Responses not yet written close their connection once sent.
      for (const res of inFlight.all()) closeAfter(res)
      drain.closed = new Promise<void>(resolve => {
        // Stops accepting; resolves when every connection is closed. (An error only says the
        // server was not listening: nothing is left to wait for.)
        server.close(() => resolve())
        server.closeIdleConnections()
        timer = setTimeout(() => server.closeAllConnections(), Math.max(0, deadlineMs))
        timer.unref()
      }).finally(() => clearTimeout(timer))
      return drain.closed
    },
    cutNow() {
      server.closeAllConnections()
    },
  }
  const closeIdle = (): void => server.closeIdleConnections()
  // A response's end (`close` follows `finish`): it is no longer in flight, and a keep-alive
  // connection that became idle during the shutdown (its response sent without
  // `Connection: close`, e.g. streamed before) is closed at once. One function for every
  // response, so a request costs no closure here.
  function settled(this: ServerResponse): void {
    inFlight.delete(this)
    if (drain.closing) setImmediate(closeIdle)
  }
  // First of the request listeners, so the header is set before any handler writes.
  server.prependListener('request', (_req: IncomingMessage, res: ServerResponse) => {
    if (drain.closing) closeAfter(res)
    else inFlight.add(res)
    res.on('close', settled)
  })
  drains.set(server, drain)
  return drain
}

function deadlineFromEnv(): number | undefined {
  const text = process.env.BETTER_AUTH_SHUTDOWN_TIMEOUT_MS?.trim()
  if (text === undefined || text === '') return undefined
  const value = Number(text)
  return Number.isFinite(value) && value >= 0 ? value : undefined
}

/**
 * Graceful shutdown of any `http.Server` (the standalone server's, Express's `app.listen()`,
 * Koa's, NestJS's `app.getHttpServer()`): on SIGTERM or SIGINT it stops accepting connections,
 * answers the requests in flight (each with `Connection: close`, so its connection closes after
 * it), closes idle keep-alive connections, cuts whatever is still open after `deadlineMs`, runs
 * `onClose` (close the core there: `() => auth.close()`), and exits 0. A second signal cuts the
 * remaining connections at once.
 *
 *   gracefulShutdown(app.listen(8080), { onClose: () => auth.close() })
 */
export function gracefulShutdown(server: Server, options: ShutdownOptions = {}): GracefulShutdown {
  const drain = drainOf(server)
  const deadlineMs = options.deadlineMs ?? deadlineFromEnv() ?? DEFAULT_SHUTDOWN_TIMEOUT_MS
  const logger = options.logger
  let done: Promise<void> | undefined
  const handle: GracefulShutdown = {
    deadlineMs,
    get closing() {
      return drain.closing
    },
    close(closeOptions = {}) {
      if (done === undefined) {
        done = drain
          .begin(closeOptions.deadlineMs ?? deadlineMs)
          .then(async () => void (await options.onClose?.()))
      }
      return done
    },
  }
  const signals = options.signals ?? ['SIGTERM', 'SIGINT']
  if (signals.length > 0) {
    const onSignal = (signal: NodeJS.Signals): void => {
      if (done !== undefined) {
        drain.cutNow()
        return
      }
      logger?.info({ signal, deadlineMs }, `${signal}: shutting down`)
      handle.close().then(
        () => {
          logger?.info({}, 'closed')
          if (options.exit !== false) process.exit(0)
        },
        (error: unknown) => {
          logger?.error({ err: error }, 'shutdown failed')
          if (options.exit !== false) process.exit(1)
        }
      )
    }
    for (const signal of signals) process.on(signal, onSignal)
  }
  return handle
}

/**
 * `/healthz` and `/readyz` as a node:http handler: `(req, res, next)` answers a health path and
 * calls `next()` for any other (so it mounts as Express middleware as it is; without `next`, other
 * paths get 404).
 *
 *   app.use(healthHandler(auth))
 */
export function healthHandler(
  auth: HealthTarget & Partial<Pick<BetterAuthServer<unknown>, 'logger'>>,
  options: HealthOptions = {}
): (req: IncomingMessage, res: ServerResponse, next?: (error?: unknown) => void) => void {
  const routes = healthRoutes(auth, { logger: auth.logger, ...options })
  return (req, res, next) => {
    const url = req.url ?? '/'
    const query = url.indexOf('?')
    const answer = routes.answer(req.method ?? 'GET', query === -1 ? url : url.slice(0, query))
    if (answer === undefined) {
      if (next !== undefined) next()
      else writeResult(res, { status: 404, headers: {}, body: '' })
      return
    }
    answer.then(
      result => {
        if (!res.headersSent && !res.destroyed) writeResult(res, result)
      },
      (error: unknown) => (next !== undefined ? next(error) : res.destroy())
    )
  }
}
