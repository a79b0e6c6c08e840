/**
 * Express adapter (minimal): mounts the protocol endpoints and protects routes with access
 * requests. Works whether or not `express.json()` ran before it: it reads the raw body itself,
 * or uses the raw bytes a body parser kept (`express.raw`, or a `verify` hook storing
 * `req.rawBody`).
 */
import type { NextFunction, Request, RequestHandler, Response } from 'express'
import type { AccessPrincipal, BetterAuthServer } from '../../src/server/core'
import type { Endpoint } from '../../src/server/routes'
import { readBody } from '../shared/body'

export interface ExpressMountOptions {
  /** Path prefix of the protocol endpoints, e.g. `/auth`. @default '' */
  prefix?: string
}

type RawRequest = Request & { rawBody?: Buffer | string; _body?: boolean }

/** The request body as raw bytes or text, however the app parsed it. */
export async function rawBody(req: Request, limit: number): Promise<Buffer | string> {
  const r = req as RawRequest
  if (Buffer.isBuffer(r.rawBody) || typeof r.rawBody === 'string') return r.rawBody
  if (Buffer.isBuffer(r.body)) return r.body
  if (typeof r.body === 'string') return r.body
  if (r._body === true || r.readableEnded) {
    // A parser consumed the stream without keeping the bytes: the compact re-serialization is
    // the best left (it verifies for clients that sign JSON.stringify output).
    return r.body === undefined ? '' : JSON.stringify(r.body)
  }
  return readBody(req, limit)
}

/** Middleware answering the protocol endpoints; everything else goes to `next()`. */
export function protocolRouter(
  auth: BetterAuthServer<unknown>,
  options: ExpressMountOptions = {}
): RequestHandler {
  const table = new Map<string, { endpoint: Endpoint; methods: readonly string[] }>()
  for (const route of auth.routes(options.prefix)) table.set(route.path, route)
  const limit = auth.limits.maxBodyBytes ?? 65536
  return (req: Request, res: Response, next: NextFunction) => {
    const route = table.get(req.path)
    if (route === undefined || !route.methods.includes(req.method)) {
      next()
      return
    }
    rawBody(req, limit)
      .then(
        body => auth.handle(route.endpoint, body),
        error => auth.errorResult(error, { endpoint: route.endpoint })
      )
      .then(result => {
        res.status(result.status).set(result.headers).send(result.body)
      })
      .catch(next)
  }
}

export interface RequireAccessOptions {
  /** Where the principal is put on the request. @default 'betterAuth' */
  requestProperty?: string
}

/**
 * Protects a route: verifies the access request, puts the principal on `req.betterAuth`, and
 * signs whatever the handler sends with `res.json(data)` into a response envelope.
 */
export function requireAccess<Attributes = unknown, Body = unknown>(
  auth: BetterAuthServer<Attributes>,
  options: RequireAccessOptions = {}
): RequestHandler {
  const property = options.requestProperty ?? 'betterAuth'
  const limit = auth.limits.maxBodyBytes ?? 65536
  return (req: Request, res: Response, next: NextFunction) => {
    rawBody(req, limit)
      .then(body => auth.verifyAccess<Body>(body))
      .then(
        (principal: AccessPrincipal<Attributes, Body>) => {
          ;(req as unknown as Record<string, unknown>)[property] = principal
          res.json = (data: unknown) => {
            auth.respond(principal.nonce, data).then(
              text => res.type('application/json').send(text),
              error => next(error)
            )
            return res
          }
          next()
        },
        error => {
          const result = auth.errorResult(error, { route: req.path })
          res.status(result.status).set(result.headers).send(result.body)
        }
      )
      .catch(next)
  }
}
