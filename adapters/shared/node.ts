/**
 * What the node:http frameworks share (Express, Koa, NestJS on Express or Fastify): the raw request
 * body whatever body parser ran before the adapter, and protocol endpoints as node:http middleware.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { BetterAuthServer, HandlerResult, RequestContext } from '../../src/server/core'
import type { Endpoint } from '../../src/server/routes'
import { InvalidMessageError, PayloadTooLargeError } from '../../src/errors'
import { readBody } from './body'

/** Where the bytes came from. */
export type BodySource = 'raw' | 'stream' | 'reserialized'

/** What a body parser may have left: the raw bytes it kept, and what it parsed. */
export interface ParsedBody {
  /** Raw bytes kept by a parser (`verify` hook, Nest's `rawBody: true`, koa-bodyparser). */
  rawBody?: unknown
  /** What a parser produced (`req.body` / `ctx.request.body`). */
  body?: unknown
}

/** Default body size limit when the core sets none. */
export const DEFAULT_BODY_LIMIT = 64 * 1024

/** Whether a parser already consumed the request stream. */
export function streamConsumed(req: IncomingMessage): boolean {
  return (
    (req as { _body?: unknown })._body === true ||
    req.readableEnded ||
    (req.complete && !req.readable)
  )
}

/**
 * The request body as the client sent it, when that can be had: raw bytes a parser kept, a body a
 * raw/text parser produced, or the unread stream. When a JSON parser consumed the stream without
 * keeping the bytes, the compact re-serialization of what it parsed is the best left: it verifies
 * for clients that sign `JSON.stringify` output (every known client), but not for a payload whose
 * text differs from its re-serialization (e.g. a numeric-looking key, which `JSON.parse`
 * reorders). Mount the adapter before the parser, or keep the raw bytes, to avoid that.
 */
export async function nodeRawBody(
  req: IncomingMessage,
  parsed: ParsedBody,
  limit: number
): Promise<{ body: Buffer | string; source: BodySource }> {
  const raw = parsed.rawBody
  if (Buffer.isBuffer(raw) || typeof raw === 'string') return { body: raw, source: 'raw' }
  if (streamConsumed(req)) {
    const body = parsed.body
    if (Buffer.isBuffer(body) || typeof body === 'string') return { body, source: 'raw' }
    let text: string
    try {
      text = body === undefined || body === null ? '' : JSON.stringify(body)
    } catch (cause) {
      throw new InvalidMessageError('body', 'cannot be re-serialized', { cause })
    }
    return { body: text, source: 'reserialized' }
  }
  return { body: await readBody(req, limit), source: 'stream' }
}

const warned = new WeakSet<object>()

/** Logs once per core that bodies are being re-serialized, with the way to avoid it. */
export function warnReserialized(core: BetterAuthServer<unknown>, advice: string): void {
  if (warned.has(core)) return
  warned.add(core)
  core.logger.warn(
    { adapter: 'better-auth-protocol' },
    `a body parser consumed the request before better-auth; verifying the re-serialized body. ${advice}`
  )
}

/**
 * A body-parser `verify` hook that keeps the raw bytes on `req.rawBody`, so signatures are checked
 * over exactly what was sent: `express.json({ verify: keepRawBody })`.
 */
export function keepRawBody(req: IncomingMessage, _res: unknown, buffer: Buffer): void {
  ;(req as IncomingMessage & { rawBody?: Buffer }).rawBody = buffer
}

/** Parses a body read for an anonymous request, so handlers after the adapter still get it. */
export function parsedForHandler(body: Buffer | string): unknown {
  const text = typeof body === 'string' ? body : body.toString('utf8')
  if (text === '') return undefined
  try {
    return JSON.parse(text) as unknown
  } catch {
    return text
  }
}

/**
 * After a body over the limit the rest of it is not read: the connection closes once the answer is
 * sent, instead of draining an upload of any length to keep it alive.
 */
export function closeAfterOverlongBody(
  error: unknown,
  setHeader: (name: string, value: string) => unknown
): void {
  if (error instanceof PayloadTooLargeError) setHeader('connection', 'close')
}

/** Writes a core answer on a plain node:http response, with an explicit length. */
export function writeResult(res: ServerResponse, result: HandlerResult): void {
  // An explicit length: no chunked framing on keep-alive connections.
  res.setHeader('content-length', Buffer.byteLength(result.body))
  res.writeHead(result.status, result.headers)
  res.end(result.body)
}

/** A request as node:http middleware sees it: Express's, or the one @fastify/middie passes on. */
export type MiddlewareRequest = IncomingMessage & { ip?: string; originalUrl?: string }

/** The path of a request, without its query (`originalUrl` where a router rewrote `url`). */
export const requestPath = (req: { originalUrl?: string; url?: string }): string =>
  (req.originalUrl ?? req.url ?? '').split('?', 1)[0] as string

/** The client IP a framework worked out (`req.ip`), else the socket's peer. */
export const requestIp = (req: MiddlewareRequest): string | undefined =>
  req.ip ?? req.socket?.remoteAddress

/**
 * node:http middleware answering one protocol endpoint (whatever the path it is mounted at):
 * reads the raw body (kept by a parser, or from the unread stream) and writes the core's answer.
 */
export function endpointMiddleware<
  Req extends MiddlewareRequest = MiddlewareRequest,
  Res extends ServerResponse = ServerResponse,
>(
  auth: BetterAuthServer<unknown>,
  endpoint: Endpoint,
  options: {
    /** How to keep the raw bytes, logged once if a parser re-serialized the body. */
    advice: string
    clientIp?: ((req: Req) => string | undefined) | undefined
    write?: (res: Res, result: HandlerResult) => void
  }
): (req: Req, res: Res, next: (error?: unknown) => void) => void {
  const limit = auth.limits.maxBodyBytes ?? DEFAULT_BODY_LIMIT
  const clientIp = options.clientIp ?? requestIp
  const write = options.write ?? writeResult
  return (req, res, next) => {
    const context: RequestContext = { ip: clientIp(req), path: requestPath(req) }
    nodeRawBody(req, req as ParsedBody, limit)
      .then(
        ({ body, source }) => {
          if (source === 'reserialized') warnReserialized(auth, options.advice)
          return auth.handle(endpoint, body, context)
        },
        error => {
          closeAfterOverlongBody(error, (name, value) => res.setHeader(name, value))
          return auth.errorResult(error, { endpoint, ...context })
        }
      )
      .then(result => {
        if (!res.destroyed) write(res, result) // else the client went away: nothing to answer
      })
      .catch(next)
  }
}
