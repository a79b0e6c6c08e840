/**
 * What the Nest adapter needs of the HTTP platform, for Express and Fastify alike: endpoint
 * middleware on node:http's request and response (what both platforms hand to middleware), and
 * the few places where their request and response objects differ.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { BetterAuthServer, RequestContext } from '../../src/server/core'
import type { Endpoint } from '../../src/server/routes'
import {
  DEFAULT_BODY_LIMIT,
  nodeRawBody,
  warnReserialized,
  writeResult,
  type ParsedBody,
} from '../shared/node'

/** A request as middleware sees it: Express's, or the node:http one @fastify/middie passes on. */
export type MiddlewareRequest = IncomingMessage & { ip?: string; originalUrl?: string }

const ADVICE =
  'Create the app with NestFactory.create(AppModule, { rawBody: true }) so the raw bytes are kept.'

/** The path of a request, without its query. */
export const pathOf = (req: { originalUrl?: string; url?: string }): string =>
  (req.originalUrl ?? req.url ?? '').split('?', 1)[0] as string

/**
 * Middleware answering one protocol endpoint. On Express it runs after Nest's body parser (which
 * keeps the raw bytes with `rawBody: true`); on Fastify before the content parser, so it reads
 * the unread stream itself.
 */
export function endpointMiddleware(
  auth: BetterAuthServer<unknown>,
  endpoint: Endpoint
): (req: MiddlewareRequest, res: ServerResponse, next: (error?: unknown) => void) => void {
  const limit = auth.limits.maxBodyBytes ?? DEFAULT_BODY_LIMIT
  return (req, res, next) => {
    const context: RequestContext = { ip: req.ip ?? req.socket?.remoteAddress, path: pathOf(req) }
    nodeRawBody(req, req as ParsedBody, limit)
      .then(
        ({ body, source }) => {
          if (source === 'reserialized') warnReserialized(auth, ADVICE)
          return auth.handle(endpoint, body, context)
        },
        error => auth.errorResult(error, { endpoint, ...context })
      )
      .then(result => writeResult(res, result))
      .catch(next)
  }
}

/** Express's response (`setHeader`, `headersSent`) or Fastify's reply (`header`, `sent`). */
export interface PlatformResponse {
  statusCode?: number
  headersSent?: boolean
  sent?: boolean
  header?(name: string, value: string): unknown
  setHeader?(name: string, value: string): unknown
}

/** Sets a header on either platform's response. */
export function setResponseHeader(response: PlatformResponse, name: string, value: string): void {
  if (typeof response.header === 'function') response.header(name, value)
  else response.setHeader?.(name, value)
}

/** Whether the handler already sent the response itself (`@Res()`). */
export const responseSent = (response: PlatformResponse): boolean =>
  response.headersSent === true || response.sent === true

/**
 * The node:http request under a platform's request: Fastify's request keeps it as `raw`;
 * Express's request is one.
 */
export function nodeRequestOf(request: object): IncomingMessage {
  const raw = (request as { raw?: unknown }).raw
  return (
    raw !== null && typeof raw === 'object' && 'headers' in raw ? raw : request
  ) as IncomingMessage
}

export { ADVICE as RAW_BODY_ADVICE }
