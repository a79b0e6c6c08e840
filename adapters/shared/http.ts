/**
 * What a node:http server answers before any framework sees the request: request lines and
 * headers node's parser refuses, and `CONNECT`, which node hands to a `connect` listener (and
 * otherwise drops the connection). Every adapter offers `handleClientErrors(server)` so those
 * answers carry the protocol's error body too.
 */
import { STATUS_CODES, type Server } from 'node:http'
import type { Duplex } from 'node:stream'
import {
  BetterAuthError,
  InternalError,
  InvalidMessageError,
  MethodNotAllowedError,
  NotFoundError,
  PayloadTooLargeError,
  UnsupportedMediaTypeError,
} from '../../src/errors'
import { announcesBody, namesCoding } from '../../src/binding/fields'
import { DEFAULT_BODY_LIMIT, JSON_CONTENT_TYPE } from './core'

/** A complete HTTP/1.1 answer carrying the protocol error body; the connection then closes. */
export function rawErrorResponse(
  error: BetterAuthError,
  headers: Record<string, string> = {}
): string {
  const body = JSON.stringify(error.toBody(false))
  const lines = [
    `HTTP/1.1 ${error.status} ${STATUS_CODES[error.status] ?? 'Error'}`,
    `content-type: ${JSON_CONTENT_TYPE}`,
    `content-length: ${Buffer.byteLength(body)}`,
    'connection: close',
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
  ]
  return `${lines.join('\r\n')}\r\n\r\n${body}`
}

/** The answer to a request node's HTTP parser refused (or gave up on). */
function clientErrorOf(code: string | undefined): BetterAuthError {
  if (code === 'HPE_HEADER_OVERFLOW') {
    return new InvalidMessageError('headers', 'too large', { status: 431 })
  }
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    return new InvalidMessageError('request', 'not complete in time', { status: 408 })
  }
  return new InvalidMessageError('request', 'not a valid HTTP/1.1 request')
}

const handled = new WeakSet<Server>()

/**
 * Answers a request node's parser refused (see {@link handleClientErrors}). Fastify (and so Nest
 * on Fastify) installs its own `clientError` listener: give it this one instead, as its
 * `clientErrorHandler` option (`new FastifyAdapter({ clientErrorHandler: fastifyClientErrorHandler })`).
 */
export function fastifyClientErrorHandler(error: Error & { code?: string }, socket: Duplex): void {
  // A peer that went away, or a connection whose answer has begun: nothing can be said.
  const busy = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage
  if (error.code === 'ECONNRESET' || !socket.writable || busy?.headersSent === true) {
    socket.destroy()
    return
  }
  socket.end(rawErrorResponse(clientErrorOf(error.code)))
}

/**
 * Answers what never reaches the framework with the protocol's JSON error body, then closes the
 * connection: a request line, method token or header node's parser refuses (400 `BA101`; 431 for
 * headers over node's size limit) and `CONNECT` (405 `BA605`; node would otherwise drop the
 * connection without an answer). Returns the server; calling it twice changes nothing.
 *
 *   handleClientErrors(app.listen(8080))
 */
export function handleClientErrors<S extends Server>(server: S): S {
  if (handled.has(server)) return server
  handled.add(server)
  // A server that answers refused requests itself already (Fastify, given
  // `fastifyClientErrorHandler`) keeps its listener: two would both write to the socket.
  if (server.listenerCount('clientError') === 0) server.on('clientError', fastifyClientErrorHandler)
  server.on('connect', (_request: unknown, socket: Duplex) => {
    socket.on('error', () => socket.destroy())
    socket.end(rawErrorResponse(new MethodNotAllowedError()))
  })
  return server
}

/**
 * The codes of node:zlib's errors (zlib's `Z_…`, brotli's `ERR__…`/`ERR_BROTLI…`, zstd's): what a
 * body parser meets when a body does not decode as its `Content-Encoding` says.
 */
const DECODING_ERROR = /^(?:Z_|ERR__|ERR_BROTLI|ZSTD_)/

/** Whether `error` is node:zlib's failure to decode a body. */
export const isDecodingError = (error: unknown): boolean => {
  const code = (error as { code?: unknown } | null)?.code
  return typeof code === 'string' && DECODING_ERROR.test(code)
}

/**
 * The request fields `declaresBody` and `hasCodedBody` read (node's `req.headers`, Fastify's
 * `request.headers`).
 */
export interface BodyFields {
  'content-encoding'?: unknown
  'content-length'?: unknown
  'transfer-encoding'?: unknown
}

/** Whether a request has a body: a `Content-Length` above zero, or a `Transfer-Encoding`. */
export function declaresBody(headers: BodyFields | undefined): boolean {
  const length = headers?.['content-length']
  return (
    headers?.['transfer-encoding'] !== undefined ||
    (typeof length === 'string' && announcesBody([length]))
  )
}

/** Whether a request has a body (`declaresBody`) sent with a content coding other than `identity`. */
export function hasCodedBody(headers: BodyFields | undefined): boolean {
  const coding = headers?.['content-encoding']
  return typeof coding === 'string' && namesCoding([coding]) && declaresBody(headers)
}

/**
 * A body parser's failure to decode a body as its `Content-Encoding` says (node:zlib's error, not
 * one of body-parser's own typed errors), answered as the coding refused: 415 BA606, what the
 * header form's first check answers a coded body (docs/http-binding.md §2.6). Undefined for
 * anything else, an application's own errors included.
 */
export function decodingRefusal(
  error: unknown,
  headers: BodyFields | undefined
): UnsupportedMediaTypeError | undefined {
  if (!isDecodingError(error) || (error as { type?: unknown }).type !== undefined) return undefined
  if (!hasCodedBody(headers)) return undefined
  return new UnsupportedMediaTypeError({}, 'the body does not decode as its Content-Encoding says')
}

/**
 * The protocol error for an HTTP error a framework or one of its middlewares raised itself (a
 * router's 404, 405 or 501, a body parser's 400, 413 or 415, any `http-errors` error): the same
 * status with the protocol's code, so no framework page or other error shape reaches a client.
 * Anything without a 4xx status is an internal error (500 BA600).
 */
export function protocolErrorForStatus(error: unknown): BetterAuthError {
  if (error instanceof BetterAuthError) return error
  const found = error as { status?: unknown; statusCode?: unknown; limit?: unknown } | null
  const status = Number(found?.status ?? found?.statusCode)
  switch (status) {
    case 404:
      return new NotFoundError()
    case 405:
    case 501:
      return new MethodNotAllowedError()
    case 413:
      return new PayloadTooLargeError(
        typeof found?.limit === 'number' ? found.limit : DEFAULT_BODY_LIMIT
      )
    case 415:
      return new UnsupportedMediaTypeError()
    default:
      if (status >= 400 && status < 500) {
        return new InvalidMessageError('request', 'refused', { status, cause: error })
      }
      return new InternalError({ cause: error })
  }
}
