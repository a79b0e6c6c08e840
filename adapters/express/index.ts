/**
 * Express adapter (Express 4 and 5): `better-auth-protocol/express`.
 *
 *   const auth = betterAuth({ attributes: … })
 *   app.use(auth.express())                       // the protocol endpoints, before express.json()
 *   app.post('/notes', auth.requireAccess(), handler)   // any route, protected
 *
 * The adapter reads the raw request body itself, so it works whether or not a body parser ran
 * first; mount it before `express.json()` (or give the parser the `keepRawBody` hook) so
 * signatures are checked over exactly the bytes the client sent. Express itself is not imported at
 * run time: the middleware only uses what Express 4 and 5 both put on `req` and `res`.
 */
import type { ErrorRequestHandler, NextFunction, Request, RequestHandler, Response } from 'express'
import {
  type AccessPrincipal,
  type BetterAuthOptions,
  type BetterAuthServer,
  type RequestContext,
} from '../../src/server/core'

import { AdapterBase, ProtocolRoutes, coreOf, type MountOptions } from '../shared/routes'
import type { Endpoint } from '../../src/server/routes'
import { accessFailure, type AccessOptions } from '../shared/access'
import { DEFAULT_BODY_LIMIT, bodyLimit, plainErrorResult, type AdapterCore } from '../shared/core'
import {
  BetterAuthError,
  InvalidMessageError,
  NotFoundError,
  PayloadTooLargeError,
  UnsupportedMediaTypeError,
} from '../../src/errors'
import { decodingRefusal, handleClientErrors } from '../shared/http'
import { forgetJsonRoute, routeJson, type JsonMethod, type JsonRoute } from '../shared/express-json'
import { expressView, withUnless, type WithUnless } from '../shared/unless'
import { healthRoutes, type HealthOptions } from '../../src/server/health'
import { adminHttp, type AdminHttpCore, type AdminHttpOptions } from '../../src/server/admin-http'
import {
  closeAfterOverlongBody,
  endSignedJson,
  endpointMiddleware,
  getPrincipal as principalOf,
  keepRawBody,
  nodeAccess,
  nodeRawBody,
  requestIp,
  requestPath,
  signNodeReplies,
  type ParsedBody,
} from '../shared/node'

export {
  BetterAuthHttpError,
  UnauthorizedError,
  type Authorize,
  type AccessOptions,
} from '../shared/access'
export type { AdapterCore } from '../shared/core'
export { keepRawBody, handleClientErrors }
export { expressServerOptions, type ExpressPrototypes } from '../shared/server-classes'

const ADVICE =
  'Mount auth.express() / requireAccess() before express.json(), or use ' +
  'express.json({ verify: auth.verify }) (or keepRawBody).'

/** Options of the protocol endpoints middleware. */
export interface ExpressMountOptions extends MountOptions {
  /**
   * The client IP given to the core (rate limiting, events). @default `req.ip`, which honours the
   * app's `trust proxy` setting
   */
  clientIp?: (req: Request) => string | undefined
}

/** Options of `requireAccess`. */
export interface RequireAccessOptions<
  Attributes = unknown,
  Body = unknown,
  Property extends string = string,
> extends AccessOptions<Attributes, Body, Request> {
  /** Where the principal is put on the request. @default 'betterAuth' */
  requestProperty?: Property
  /**
   * Replace `req.body` with the verified request data (`payload.request`), so an existing handler
   * reads what it always read. @default true
   */
  replaceBody?: boolean
  /**
   * Pass failures to `next(err)` as a {@link BetterAuthHttpError} instead of answering them.
   * @default false
   */
  failWithError?: boolean
  /** The client IP given to the core. @default `req.ip` */
  clientIp?: (req: Request) => string | undefined
}

/** A request that passed `requireAccess`: the principal is on `req[Property]`. */
export type AuthedRequest<
  Attributes = unknown,
  Body = unknown,
  Property extends string = 'betterAuth',
> = Request & { [P in Property]: AccessPrincipal<Attributes, Body> }

/**
 * A request that passed `requireAccess({ credentialsRequired: false })`: the principal is on
 * `req[Property]`, or absent for a caller without credentials. Unlike `AuthedRequest`, it can type
 * a handler's parameter directly: `(req: OptionalAuthedRequest<Attributes>, res) => …`.
 */
export type OptionalAuthedRequest<
  Attributes = unknown,
  Body = unknown,
  Property extends string = 'betterAuth',
> = Request & { [P in Property]?: AccessPrincipal<Attributes, Body> }

/**
 * A request that passed `requireAccess<Body>({ requestProperty })` when the compiler does not know
 * the property name (TypeScript infers no type argument once one is given): any property may hold
 * the principal, and each may be absent. `requireAccess<Body, 'me'>(…)` types `req.me` exactly.
 */
export type AnyPropertyAuthedRequest<Attributes = unknown, Body = unknown> = Request & {
  [property: string]: AccessPrincipal<Attributes, Body> | undefined
}

declare const authedRequest: unique symbol

/**
 * The handler `requireAccess<Body>()` returns: typed so that the handlers after it on the same
 * route see `req.body` as `Body` (the verified request data). `Req` is the request as those
 * handlers get it, principal included: read it with {@link RequestOf}.
 */
export type AccessHandler<Body, Req extends Request = Request> =
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- route params come from the path
  RequestHandler<any, unknown, Body> & {
    /** Type only (never set): the request the handlers after this one get. */
    readonly [authedRequest]?: Req
  }

/**
 * The request the handlers after an access middleware get (Express cannot pass it on to them
 * itself): `AuthedRequest` after `requireAccess()`, `OptionalAuthedRequest` after
 * `requireAccess({ credentialsRequired: false })`, with the configured `requestProperty`.
 *
 *   const optional = auth.requireAccess({ credentialsRequired: false })
 *   app.get('/hello', optional, (req: RequestOf<typeof optional>, res) => {
 *     res.json({ hello: req.betterAuth?.identity ?? 'stranger' })
 *   })
 */
export type RequestOf<Handler> = Handler extends { readonly [authedRequest]?: infer Req }
  ? Exclude<Req, undefined>
  : Request

function send(
  res: Response,
  result: { status: number; headers: Record<string, string> },
  body: string
) {
  res.status(result.status).set(result.headers).send(body)
}

/**
 * Middleware answering one protocol endpoint (whatever the path it is mounted at): reads the raw
 * body and sends the core's answer.
 */
export function endpointHandler(
  auth: AdapterCore,
  endpoint: Endpoint,
  options: Pick<ExpressMountOptions, 'clientIp'> = {}
): RequestHandler {
  return endpointMiddleware<Request, Response>(auth, endpoint, {
    advice: ADVICE,
    clientIp: options.clientIp,
    write: (res, result) => send(res, result, result.body),
  })
}

/** Middleware answering the protocol endpoints; every other request goes to `next()`. */
export function protocolRouter(
  auth: AdapterCore,
  options: ExpressMountOptions = {}
): RequestHandler {
  const routes = new ProtocolRoutes(auth, options)
  const handlers = new Map(
    routes.routes.map(route => [route.path, endpointHandler(auth, route.endpoint, options)])
  )
  // A protocol path asked with another method goes on to the app, like any unmatched route.
  return (req: Request, res: Response, next: NextFunction) => {
    const match = routes.match(req.path, req.method)
    if (match?.kind === 'endpoint') {
      ;(handlers.get(match.route.path) as RequestHandler)(req, res, next)
    } else if (match?.kind === 'openapi') {
      res.type('application/json').send(match.document)
    } else {
      next()
    }
  }
}

/** What `signReplies` keeps for one response. */
interface Signing {
  auth: Pick<AdapterCore, 'respond'>
  nonce: string
  next: NextFunction
  /** `res.json` as it was on the response, when the replacement had to be set on it. */
  json: Response['json'] | undefined
  signed: boolean
}

/** By response, beside it rather than on it (see adapters/shared/express-json.ts). */
const signings = new WeakMap<Response, Signing>()

/**
 * Makes `res.json` (and so `res.send(object)`, which calls it) send a signed response envelope
 * echoing `nonce`. Replies with a status of 400 or more are sent as they are: the protocol's
 * errors are unsigned `{"error":…}` bodies. Express's own `json` is routed here by a hook set once
 * (`routeJson`), which costs no property on the response; when something else stands in for it
 * (a middleware's wrapper set on the response), a replacement is set on the response instead.
 */
export function signReplies(
  auth: Pick<AdapterCore, 'respond'>,
  res: Response,
  nonce: string,
  next: NextFunction
): void {
  const routed = routeJson(res, signedJsonRoute)
  signings.set(res, { auth, nonce, next, json: routed ? undefined : res.json, signed: false })
  if (!routed) res.json = signedJson as Response['json']
}

/** The replacement set on a response whose `json` is not Express's own. */
function signedJson(this: Response, ...args: unknown[]): Response {
  return signedJsonRoute(this, args, (signings.get(this) as Signing).json as JsonMethod) as Response
}

/** The data of `res.json(data)` is signed (as it always was here, whatever else was passed). */
const signedJsonRoute: JsonRoute = (reply, args, json) => {
  const res = reply as Response
  const signing = signings.get(res) as Signing
  if (signing.signed) return res // a reply is being signed already: never send a second, unsigned one
  if (res.statusCode >= 400) return json.apply(res, args)
  signing.signed = true
  void sendSigned(res, signing, args[0])
  return res
}

async function sendSigned(res: Response, signing: Signing, data: unknown): Promise<void> {
  let text: string
  try {
    text = await signing.auth.respond(signing.nonce, data)
  } catch (error) {
    if (!res.headersSent) signing.next(error)
    return
  }
  forget(res, signing)
  if (res.headersSent) return // something else answered meanwhile
  endSignedJson(res, text)
}

/**
 * A routed reply is signed: its entries go, so that they do not keep the response (and its
 * request) through V8's young-generation collections (see adapters/shared/principals.ts);
 * `res.json` is Express's own again. After a signing failure they stay: an error handler's
 * `res.json` must still not send an unsigned success. A replacement set on the response keeps its
 * entry, which it reads.
 */
function forget(res: Response, signing: Signing): void {
  if (signing.json !== undefined) return
  signings.delete(res)
  forgetJsonRoute(res)
}

/** The shared access step's view of an Express request (also used by the Passport strategy). */
export function expressAccessTarget(req: Request, context: RequestContext) {
  const r = req as Request & Record<string, unknown>
  return {
    req,
    parsed: req as ParsedBody,
    source: req,
    key: req,
    holder: req,
    setBody: (body: unknown) => void (r.body = body),
    context,
  }
}

/**
 * Protects a route: verifies the access request (token, token lifetime, request signature,
 * timestamp, nonce) in either form (`binding`: the header form when the request carries
 * `Authorization: BetterAuth`, the signed body otherwise), runs `authorize`, puts the principal on `req.betterAuth` (see
 * `requestProperty`) and `req.body = principal.request`, and signs whatever the handler sends with
 * `res.json(data)` / `res.send(object)` into a response envelope echoing the request nonce. In the
 * header form `req.body` stays what the app's parser made of it and the reply goes out as the
 * handler wrote it (any status, any content type) with the response-signature headers.
 * Failures are answered with the protocol error body and status (401 with `WWW-Authenticate`), or
 * passed to `next(err)` with `failWithError`.
 */
export function requireAccess<
  Attributes = unknown,
  Body = unknown,
  Property extends string = 'betterAuth',
>(
  auth: AdapterCore<Attributes>,
  options?: RequireAccessOptions<Attributes, Body, Property> & { credentialsRequired?: true }
): AccessHandler<Body, AuthedRequest<Attributes, Body, Property>>
export function requireAccess<
  Attributes = unknown,
  Body = unknown,
  Property extends string = 'betterAuth',
>(
  auth: AdapterCore<Attributes>,
  options: RequireAccessOptions<Attributes, Body, Property> & { credentialsRequired: boolean }
): AccessHandler<Body, OptionalAuthedRequest<Attributes, Body, Property>>
export function requireAccess<Attributes = unknown, Body = unknown>(
  auth: AdapterCore<Attributes>,
  options: RequireAccessOptions<Attributes, Body>
): AccessHandler<Body, AnyPropertyAuthedRequest<Attributes, Body>>
export function requireAccess<Attributes = unknown, Body = unknown>(
  auth: AdapterCore<Attributes>,
  options: RequireAccessOptions<Attributes, Body> = {}
): AccessHandler<Body, AnyPropertyAuthedRequest<Attributes, Body>> {
  const clientIp = options.clientIp ?? requestIp

  return (req: Request, res: Response, next: NextFunction) => {
    const context: RequestContext = { ip: clientIp(req), path: requestPath(req) }
    nodeAccess<Attributes, Body, Request>(auth, expressAccessTarget(req, context), options, ADVICE)
      .then(
        ({ principal, earlier, source }) => {
          if (source === 'stream') (req as Request & Record<string, unknown>)._body = true // body-parser 1.x (Express 4) skips it then
          // Signed already by the earlier check (or anonymous: nothing to sign).
          if (principal?.requestSignature !== undefined && !earlier) {
            signNodeReplies(auth, res, principal.requestSignature, next)
          } else if (principal !== undefined && !earlier) {
            signReplies(auth, res, principal.nonce, next)
          }
          next()
        },
        (error: unknown) => {
          const outcome = accessFailure(auth, error, {
            failWithError: options.failWithError,
            context,
            setHeader: (name, value) => res.setHeader(name, value),
          })
          if (outcome.kind === 'pass') next(outcome.error)
          else if (options.failWithError === true) next(outcome.error)
          else send(res, outcome.result, outcome.result.body)
        }
      )
      .catch(next)
  }
}

/** What body-parser (`express.json()`, `express.raw()` …) throws: an http-error with a `type`. */
interface ParserError {
  type?: unknown
  limit?: unknown
}

/**
 * The protocol error for what an Express app may pass to `next(err)`: a `BetterAuthError` (or the
 * `UnauthorizedError` carrying one) as it is, and body-parser's refusals — `entity.parse.failed`
 * (400 BA101), `entity.too.large` (413 BA603), `charset.unsupported` / `encoding.unsupported`
 * (415 BA606), a body cut short or of the wrong length (400 BA101). `undefined` for anything else.
 */
export function protocolErrorOf(error: unknown): BetterAuthError | undefined {
  if (error instanceof BetterAuthError) return error
  if (error instanceof Error && error.cause instanceof BetterAuthError) return error.cause
  if (typeof error !== 'object' || error === null) return undefined
  const { type, limit } = error as ParserError
  switch (type) {
    case 'entity.parse.failed':
      return new InvalidMessageError('body', 'not valid JSON')
    case 'entity.too.large':
      return new PayloadTooLargeError(typeof limit === 'number' ? limit : DEFAULT_BODY_LIMIT)
    case 'charset.unsupported':
    case 'encoding.unsupported':
      return new UnsupportedMediaTypeError()
    case 'request.aborted':
      return new InvalidMessageError('body', 'the connection closed before it was complete')
    case 'request.size.invalid':
      return new InvalidMessageError('body', 'its length does not match Content-Length')
    default:
      return undefined
  }
}

/**
 * Error middleware answering body-parser failures and the protocol's errors with the protocol
 * error body and status (see {@link protocolErrorOf}) — never Express's HTML error page with its
 * stack trace — and passing every other error on. Mount it after the routes:
 * `app.use(betterAuthErrorHandler(core))`, or `app.use(auth.errorHandler())`. With a core, the
 * answer is logged by it and carries `WWW-Authenticate` on 401; after a body over the limit the
 * connection closes.
 */
export function betterAuthErrorHandler(
  core?: Pick<AdapterCore, 'errorResult'>
): ErrorRequestHandler {
  return (error: unknown, req: Request, res: Response, next: NextFunction) => {
    // body-parser passes node:zlib's failure to decode a coded body on as a 400 with no `type`.
    const mapped = protocolErrorOf(error) ?? decodingRefusal(error, req.headers)
    if (mapped === undefined || res.headersSent) {
      next(error)
      return
    }
    closeAfterOverlongBody(mapped, (name, value) => res.setHeader(name, value))
    const result =
      core?.errorResult(mapped, { route: requestPath(req) }) ?? plainErrorResult(mapped)
    send(res, result, result.body)
  }
}

/**
 * The last handler of an app: answers every request no route took with 404 BA604 in the protocol's
 * error body, instead of Express's HTML page (`Cannot TRACE /health`). Mount it after the routes
 * and before the error handler: `app.use(auth.notFound())`.
 */
export function notFoundHandler(): RequestHandler {
  return (_req: Request, res: Response) => {
    const result = plainErrorResult(new NotFoundError())
    send(res, result, result.body)
  }
}

/**
 * Middleware answering the admin endpoints (see `adminHttp`) under their prefix (`/admin`);
 * every other request goes to `next()`. `authorize` is required: they are never open. Works with
 * or without `express.json()` before it.
 *
 *   app.use(adminRouter(core, { authorize: req => operatorOf(req) }))
 */
export function adminRouter(
  core: AdminHttpCore & Pick<AdapterCore, 'limits'>,
  options: AdminHttpOptions<Request> & Pick<ExpressMountOptions, 'clientIp'>
): RequestHandler {
  const admin = adminHttp(core, options)
  const clientIp = options.clientIp ?? requestIp
  const limit = bodyLimit(core)
  return (req: Request, res: Response, next: NextFunction) => {
    const path = requestPath(req)
    if (!admin.owns(path)) {
      next()
      return
    }
    const context: RequestContext = { ip: clientIp(req), path }
    nodeRawBody(req, req as ParsedBody, limit)
      .then(
        ({ body }) => admin.handle({ method: req.method, path, body, request: req, context }),
        (error: unknown) => {
          closeAfterOverlongBody(error, (name, value) => res.setHeader(name, value))
          return admin.fail(error, { ...context })
        }
      )
      .then(result => {
        if (result !== undefined && !res.headersSent) send(res, result, result.body)
      })
      .catch(next)
  }
}

/** The principal `requireAccess` put on the request, or `undefined`. */
export function getPrincipal<Attributes = unknown, Body = unknown>(
  req: Request
): AccessPrincipal<Attributes, Body> | undefined {
  return principalOf<Attributes, Body>(req)
}

/** The core wrapped with Express middleware factories. */
export class ExpressBetterAuth<Attributes = unknown> extends AdapterBase<Attributes> {
  /** Middleware answering the protocol endpoints (see {@link ExpressMountOptions}). */
  express(options: ExpressMountOptions = {}): RequestHandler {
    return protocolRouter(this.core, options)
  }

  /**
   * Middleware protecting a route (see {@link requireAccess}). `RequestOf<typeof handler>` is the
   * request the handlers after it get: the principal on `req[requestProperty]`, possibly absent
   * with `credentialsRequired: false` (or a `boolean`).
   */
  requireAccess<Body = unknown, Property extends string = 'betterAuth'>(
    options?: RequireAccessOptions<Attributes, Body, Property> & { credentialsRequired?: true }
  ): WithUnless<AccessHandler<Body, AuthedRequest<Attributes, Body, Property>>, Request>
  requireAccess<Body = unknown, Property extends string = 'betterAuth'>(
    options: RequireAccessOptions<Attributes, Body, Property> & { credentialsRequired: boolean }
  ): WithUnless<AccessHandler<Body, OptionalAuthedRequest<Attributes, Body, Property>>, Request>
  requireAccess<Body = unknown>(
    options: RequireAccessOptions<Attributes, Body>
  ): WithUnless<AccessHandler<Body, AnyPropertyAuthedRequest<Attributes, Body>>, Request>
  requireAccess<Body = unknown>(
    options: RequireAccessOptions<Attributes, Body> = {}
  ): WithUnless<AccessHandler<Body, AnyPropertyAuthedRequest<Attributes, Body>>, Request> {
    return withUnless(requireAccess<Attributes, Body>(this.core, options), expressView)
  }

  /**
   * Error middleware answering body-parser failures and the protocol's errors with the protocol
   * error body, never a stack trace; other errors go on (see {@link betterAuthErrorHandler}).
   * Mount it after the routes: `app.use(auth.errorHandler())`.
   */
  errorHandler(): ErrorRequestHandler {
    return betterAuthErrorHandler(this.core)
  }

  /**
   * Liveness and readiness (`GET /healthz`, `GET /readyz`; see `healthRoutes`), opt-in:
   * `app.use(auth.health())`. Other requests go on to `next()`.
   */
  health(options: HealthOptions = {}): RequestHandler {
    const routes = healthRoutes(this.core, { logger: this.core.logger, ...options })
    return (req: Request, res: Response, next: NextFunction) => {
      const answer = routes.answer(req.method, requestPath(req))
      if (answer === undefined) {
        next()
        return
      }
      answer.then(result => send(res, result, result.body), next)
    }
  }

  /**
   * The admin endpoints (`GET /admin/identities/:identity`, …), off unless mounted:
   * `app.use(auth.adminRouter({ authorize: req => actor | undefined }))` (see
   * {@link adminRouter}). Other requests go on to `next()`.
   */
  adminRouter(
    options: AdminHttpOptions<Request> & Pick<ExpressMountOptions, 'clientIp'>
  ): RequestHandler {
    return adminRouter(this.core, options)
  }

  /** 404 BA604 for every request no route took (see {@link notFoundHandler}). */
  notFound(): RequestHandler {
    return notFoundHandler()
  }

  /** A body-parser `verify` hook keeping the raw bytes: `express.json({ verify: auth.verify })`. */
  readonly verify = keepRawBody
}

/**
 * Better Auth for Express: from core options (a new core), or around an existing core (so one core
 * can serve Express and, say, a fetch handler).
 */
export function betterAuth<Attributes = unknown>(
  coreOrOptions: BetterAuthServer<Attributes> | BetterAuthOptions<Attributes> = {}
): ExpressBetterAuth<Attributes> {
  return new ExpressBetterAuth(coreOf(coreOrOptions))
}
